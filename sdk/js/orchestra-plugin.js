/**
 * Write an Orchestra job handler in JavaScript.
 *
 * A handler is a function of a `Job` that returns the job's result (anything
 * `JSON.stringify` can write) or throws:
 *
 *     import { progress, log } from './orchestra-plugin.js';
 *
 *     export function greet(job) {
 *       const { name = 'world' } = job.args;
 *       progress(50, 'greeting');
 *       log.info(`attempt ${job.attempt} of ${job.maxAttempts}`);
 *       return { text: `hello, ${name}` };
 *     }
 *
 * The component's entry module binds it to the host's interfaces of
 * `orchestra:plugin@0.2.0` and exports it as `handle`:
 *
 *     import { report } from 'orchestra:plugin/progress@0.2.0';
 *     import { log } from 'orchestra:plugin/log@0.2.0';
 *     import { serve } from './orchestra-plugin.js';
 *     import { greet } from './greet.js';
 *     export const handle = serve(greet, { report, log });
 *
 * Errors are thrown: a `Fatal` fails the job at once; any other `Error` (or thrown value)
 * fails the attempt as retryable, with its message, and the host retries while attempts
 * remain. Args that are not JSON are fatal (`bad args: …`). Handlers are synchronous.
 *
 * `run` calls a handler without the host, with a `Recorder` that keeps its progress and
 * log lines: what a native unit test of a handler (`node --test`) needs.
 */

/** A permanent failure: the job fails at once, whatever attempts remain. */
export class Fatal extends Error {
  constructor(message) {
    super(message);
    this.name = 'Fatal';
  }
}

/** The job a handler runs: who it is, which attempt this is, and its args. */
export class Job {
  /** From the host's `job-context`: `{id, plugin, queue, attempt, maxAttempts, args}`. */
  constructor({ id, plugin, queue, attempt, maxAttempts, args }) {
    /** The job's id (a UUID v7, as text). */
    this.id = id;
    /** The plugin name the job was submitted for. */
    this.plugin = plugin;
    /** The queue the job was taken from. */
    this.queue = queue;
    /** Which attempt this is, starting at 1. */
    this.attempt = attempt;
    /** How many attempts the job may have in all. */
    this.maxAttempts = maxAttempts;
    /** The job's args, as the JSON text they were submitted as. */
    this.rawArgs = args;
  }

  /** The args, parsed from JSON; throws `Fatal` (`bad args: …`) when they are not JSON. */
  get args() {
    try {
      return JSON.parse(this.rawArgs);
    } catch (e) {
      throw new Fatal(`bad args: ${e.message}`);
    }
  }
}

/** The levels of log lines, least severe first. */
export const LEVELS = ['trace', 'debug', 'info', 'warn', 'error'];

/** A host that keeps progress and log lines, for running a handler without one. */
export class Recorder {
  /** `[percent, message]` in the order reported. */
  progress = [];
  /** `[level, message]` in the order logged. */
  logs = [];

  /** Keeps a progress report; returns why it is refused, as the host would, else null. */
  report(percent, message) {
    if (message.length > 500) {
      return `message must be at most 500 characters, got ${message.length}`;
    }
    this.progress.push([percent, message]);
    return null;
  }

  /** Keeps a log line. */
  log(level, message) {
    this.logs.push([level, message]);
  }
}

/** Where `progress` and `log` go during a run: the host, or a `Recorder`. */
let host = new Recorder();

/**
 * Records the job's progress: `percent` from 0 to 100 and a message of at most 500
 * characters. Anything else is refused and nothing stored; the refusal is logged as a
 * warning, since the job itself can go on.
 */
export function progress(percent, message) {
  const refused =
    Number.isInteger(percent) && percent >= 0 && percent <= 100
      ? host.report(percent, String(message))
      : `percent must be 0 to 100, got ${percent}`;
  if (refused !== null) {
    host.log('warn', `progress refused: ${refused}`);
  }
}

/** The job's log: `log.trace`, `log.debug`, `log.info`, `log.warn`, `log.error`. */
export const log = Object.fromEntries(
  LEVELS.map((level) => [level, (message) => host.log(level, String(message))]),
);

/**
 * Runs `handler` on `job`, its progress and log going to `to` (a new `Recorder` by
 * default), and says how it ended: `{kind: 'ok', value: resultJson}`, or `kind` `'fatal'`
 * (a `Fatal` was thrown) or `'retryable'` (anything else was) with the message as `value`.
 */
export function run(handler, job, to = new Recorder()) {
  host = to;
  try {
    return { kind: 'ok', value: JSON.stringify(handler(job) ?? null) };
  } catch (e) {
    return { kind: e instanceof Fatal ? 'fatal' : 'retryable', value: message(e) };
  }
}

/** A thrown value's message: an `Error`'s (or its name), a string, or its JSON. */
function message(thrown) {
  if (thrown instanceof Error) {
    return thrown.message || thrown.name;
  }
  return typeof thrown === 'string' ? thrown : String(JSON.stringify(thrown) ?? thrown);
}

/**
 * The component's `handle` export for `handler`, given the host's `report` (from
 * `orchestra:plugin/progress@0.2.0`) and `log` (from `orchestra:plugin/log@0.2.0`).
 */
export function serve(handler, { report, log: write }) {
  const bindings = {
    report(percent, text) {
      try {
        report(percent, text);
        return null;
      } catch (e) {
        return String(e?.payload ?? e);
      }
    },
    log: write,
  };
  return (context) => {
    const outcome = run(handler, new Job(context), bindings);
    if (outcome.kind !== 'ok') {
      // The host's `job-error` variant.
      throw { tag: outcome.kind, val: outcome.value };
    }
    return outcome.value;
  };
}
