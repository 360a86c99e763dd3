// `{{name}}`: an Orchestra plugin that greets the name in its args.
//
// Args: `{"name": "..."}`. Result: `{"text": "hello, ..."}`. Args without a `name` fail the
// job at once (`Fatal`); an empty name fails it retryably (any other `Error`), to show the
// other kind. `orchestra-plugin.js` is the helper module: args, progress, log, errors;
// `index.js` exports this handler to the host.

import { Fatal, log, progress } from './orchestra-plugin.js';

/** Greets the name in the job's args. */
export function greet(job) {
  log.info(`attempt ${job.attempt} of ${job.maxAttempts}`);
  const { name } = job.args ?? {};
  if (typeof name !== 'string') {
    throw new Fatal('bad args: expected {"name": "..."}');
  }
  progress(50, 'args read');
  if (name.trim() === '') {
    throw new Error('the name is empty');
  }
  progress(100, 'done');
  return { text: `hello, ${name}` };
}
