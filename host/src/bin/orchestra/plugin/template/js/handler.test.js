// The handler's unit tests, natively: `node --test`.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Job, Recorder, run } from './orchestra-plugin.js';
import { greet } from './handler.js';

const job = (args) =>
  new Job({
    id: '0190b2c4-7f3a-7000-8000-000000000001',
    plugin: '{{name}}',
    queue: 'default',
    attempt: 1,
    maxAttempts: 3,
    args: JSON.stringify(args),
  });

test('greets the name', () => {
  const host = new Recorder();
  const outcome = run(greet, job({ name: 'world' }), host);
  assert.deepEqual(outcome, { kind: 'ok', value: '{"text":"hello, world"}' });
  assert.deepEqual(host.progress, [
    [50, 'args read'],
    [100, 'done'],
  ]);
  assert.deepEqual(host.logs, [['info', 'attempt 1 of 3']]);
});

test('an empty name is retryable and no name fatal', () => {
  assert.deepEqual(run(greet, job({ name: ' ' })), {
    kind: 'retryable',
    value: 'the name is empty',
  });
  assert.equal(run(greet, job({})).kind, 'fatal');
});
