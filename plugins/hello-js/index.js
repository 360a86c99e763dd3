// The component's entry: `hello` exported as the world `task-handler`'s `handle`, with
// its progress and log lines going to the host.

import { report } from 'orchestra:plugin/progress@0.2.0';
import { log } from 'orchestra:plugin/log@0.2.0';
import { serve } from '../../sdk/js/orchestra-plugin.js';
import { hello } from './hello.js';

export const handle = serve(hello, { report, log });
