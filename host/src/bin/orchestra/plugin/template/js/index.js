// The component's entry: `greet` exported as the world `task-handler`'s `handle`, with
// its progress and log lines going to the host.

import { report } from 'orchestra:plugin/progress@0.2.0';
import { log } from 'orchestra:plugin/log@0.2.0';
import { serve } from './orchestra-plugin.js';
import { greet } from './handler.js';

export const handle = serve(greet, { report, log });
