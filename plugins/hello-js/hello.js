// `hello_js`: the example plugin in JavaScript, on the helper module `orchestra-plugin.js`
// (`sdk/js`); `index.js` exports it to the host.
//
// Args (a JSON object, all fields optional):
//
// - `name` (default "world"): who to greet;
// - `steps` (integer, default 0): report progress and log a line that many times;
// - `fail`: "retryable" throws an ordinary `Error`, which the host retries; "fatal"
//   throws `Fatal`, which fails the job at once;
// - `spin` (boolean): loop until the host's fuel budget stops the run.
//
// Result: `{"text": "hello, NAME", "attempt": n}`.

import { Fatal, log, progress } from '../../sdk/js/orchestra-plugin.js';

/** Greets `name`, after `steps` steps of progress, or fails as the args ask. */
export function hello(job) {
  const { name = 'world', steps = 0, fail, spin } = job.args;
  log.info(`hello_js: attempt ${job.attempt} of ${job.maxAttempts}`);
  for (let step = 1; step <= steps; step++) {
    progress(Math.floor((step * 100) / steps), `step ${step} of ${steps}`);
    log.info(`step ${step} done`);
  }
  if (fail === 'fatal') throw new Fatal(`attempt ${job.attempt} failed fatally, as asked`);
  if (fail === 'retryable') throw new Error(`attempt ${job.attempt} failed, as asked`);
  while (spin) {
    // Only the host's fuel budget ends this.
  }
  console.log(`hello_js: greeting ${name}`);
  return { text: `hello, ${name}`, attempt: job.attempt };
}
