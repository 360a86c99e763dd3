// Unit tests of the helper's pure parts, natively: `node --test` in this folder.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Fatal, Job, LEVELS, Recorder, log, progress, run, serve } from './orchestra-plugin.js';

const job = (args = '{}', attempt = 1) =>
  new Job({
    id: '0190b2c4-7f3a-7000-8000-000000000001',
    plugin: 'hello',
    queue: 'default',
    attempt,
    maxAttempts: 3,
    args,
  });

test('the return value is the result as JSON', () => {
  const outcome = run((j) => ({ name: j.args.name, n: [1, 2] }), job('{"name":"ada"}'));
  assert.deepEqual(outcome, { kind: 'ok', value: '{"name":"ada","n":[1,2]}' });
  assert.deepEqual(run(() => {}, job()), { kind: 'ok', value: 'null' });
});

test('Fatal is fatal with its message', () => {
  const outcome = run(() => {
    throw new Fatal('no such user');
  }, job());
  assert.deepEqual(outcome, { kind: 'fatal', value: 'no such user' });
});

test('any other thrown value is retryable with its message', () => {
  const thrown = (value) =>
    run(() => {
      throw value;
    }, job());
  assert.deepEqual(thrown(new TypeError('upstream is down')), {
    kind: 'retryable',
    value: 'upstream is down',
  });
  assert.deepEqual(thrown(new RangeError()), { kind: 'retryable', value: 'RangeError' });
  assert.deepEqual(thrown('plain text'), { kind: 'retryable', value: 'plain text' });
  assert.deepEqual(thrown({ code: 7 }), { kind: 'retryable', value: '{"code":7}' });
  assert.deepEqual(thrown(undefined), { kind: 'retryable', value: 'undefined' });
  const outcome = run((j) => j.args.missing.field, job());
  assert.equal(outcome.kind, 'retryable');
  assert.match(outcome.value, /Cannot read properties of undefined/);
});

test('args that are not JSON are fatal with the reason', () => {
  const outcome = run((j) => j.args, job('{nope'));
  assert.equal(outcome.kind, 'fatal');
  assert.match(outcome.value, /^bad args: .*JSON/);
});

test('the job says who it is', () => {
  const outcome = run(
    (j) => [j.id, j.plugin, j.queue, j.attempt, j.maxAttempts, j.rawArgs],
    job('[1]', 2),
  );
  assert.deepEqual(JSON.parse(outcome.value), [
    '0190b2c4-7f3a-7000-8000-000000000001',
    'hello',
    'default',
    2,
    3,
    '[1]',
  ]);
});

test("progress and log lines go to the run's host", () => {
  const host = new Recorder();
  run(() => {
    progress(10, 'starting');
    for (const level of LEVELS) log[level](`a ${level} line`);
    progress(100, 'done');
  }, job(), host);
  assert.deepEqual(host.progress, [
    [10, 'starting'],
    [100, 'done'],
  ]);
  assert.deepEqual(
    host.logs,
    LEVELS.map((level) => [level, `a ${level} line`]),
  );
});

test('refused progress is a warning and the job goes on', () => {
  const host = new Recorder();
  const outcome = run(() => {
    progress(101, 'too far');
    progress(50, 'x'.repeat(501));
    return 'went on';
  }, job(), host);
  assert.equal(outcome.value, '"went on"');
  assert.deepEqual(host.progress, []);
  assert.deepEqual(host.logs, [
    ['warn', 'progress refused: percent must be 0 to 100, got 101'],
    ['warn', 'progress refused: message must be at most 500 characters, got 501'],
  ]);
});

test("serve answers the host's result and throws its job-error variant", () => {
  const logs = [];
  const bindings = {
    report() {
      throw { payload: 'refused by the host' };
    },
    log: (level, text) => logs.push([level, text]),
  };
  const context = { id: 'j', plugin: 'p', queue: 'q', attempt: 1, maxAttempts: 3 };
  const handle = serve((j) => {
    progress(5, 'x');
    if (j.args.fail === 'fatal') throw new Fatal('no');
    if (j.args.fail) throw new Error('later');
    return j.args;
  }, bindings);
  assert.equal(handle({ ...context, args: '{"a":1}' }), '{"a":1}');
  assert.deepEqual(logs, [['warn', 'progress refused: refused by the host']]);
  assert.throws(() => handle({ ...context, args: '{"fail":"fatal"}' }), {
    tag: 'fatal',
    val: 'no',
  });
  assert.throws(() => handle({ ...context, args: '{"fail":true}' }), {
    tag: 'retryable',
    val: 'later',
  });
});
