"""Write an Orchestra job handler in Python.

A handler is a function of a `Job` that returns the job's result (anything `json.dumps`
can write) or raises::

    import orchestra_plugin as orchestra

    def handle(job):
        name = job.args.get("name", "world")
        orchestra.progress(50, "greeting")
        orchestra.log.info(f"attempt {job.attempt} of {job.max_attempts}")
        return {"text": f"hello, {name}"}

    WitWorld = orchestra.export(handle)

`export` makes the class componentize-py exports for the world `task-handler` of
`orchestra:plugin@0.2.0`. Errors are exceptions: raise `Fatal` to fail the job at once;
any other exception fails the attempt as retryable, with the exception's message, and the
host retries while attempts remain. Args that are not JSON are fatal (`bad args: …`).

`run` calls a handler without the host, with a `Recorder` that keeps its progress and log
lines: what a native unit test of a handler needs.
"""

import json
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, Callable, List, Optional, Tuple

__all__ = ["LEVELS", "Fatal", "Job", "Outcome", "Recorder", "export", "log", "progress", "run"]


class Fatal(Exception):
    """A permanent failure: the job fails at once, whatever attempts remain."""


@dataclass
class Job:
    """The job a handler runs: who it is, which attempt this is, and its args."""

    #: The job's id (a UUID v7, as text).
    id: str
    #: The plugin name the job was submitted for.
    plugin: str
    #: The queue the job was taken from.
    queue: str
    #: Which attempt this is, starting at 1.
    attempt: int
    #: How many attempts the job may have in all.
    max_attempts: int
    #: The job's args, as the JSON text they were submitted as.
    raw_args: str

    @property
    def args(self) -> Any:
        """The args, parsed from JSON; `Fatal` (`bad args: …`) when they are not JSON."""
        try:
            return json.loads(self.raw_args)
        except ValueError as e:
            raise Fatal(f"bad args: {e}") from None


@dataclass
class Outcome:
    """How a run ended: `kind` is "ok" (`value` the result's JSON text), "retryable" or
    "fatal" (`value` the message)."""

    kind: str
    value: str


@dataclass
class Recorder:
    """A host that keeps progress and log lines, for running a handler without one."""

    #: `(percent, message)` in the order reported.
    progress: List[Tuple[int, str]] = field(default_factory=list)
    #: `(level, message)` in the order logged; levels are "trace" … "error".
    logs: List[Tuple[str, str]] = field(default_factory=list)

    def report(self, percent: int, message: str) -> Optional[str]:
        """Keeps a progress report; the reason it is refused, as the host's, else None."""
        if len(message) > 500:
            return f"message must be at most 500 characters, got {len(message)}"
        self.progress.append((percent, message))
        return None

    def log(self, level: str, message: str) -> None:
        """Keeps a log line."""
        self.logs.append((level, message))


#: Where `progress` and `log` go during a run: the host, or a `Recorder`.
_host: Any = Recorder()


def progress(percent: int, message: str) -> None:
    """Records the job's progress: `percent` from 0 to 100 and a message of at most 500
    characters. Anything else is refused and nothing stored; the refusal is logged as a
    warning, since the job itself can go on."""
    if isinstance(percent, int) and 0 <= percent <= 100:
        refused = _host.report(percent, str(message))
    else:
        refused = f"percent must be 0 to 100, got {percent!r}"
    if refused is not None:
        _host.log("warn", f"progress refused: {refused}")


#: The levels of log lines, least severe first.
LEVELS = ("trace", "debug", "info", "warn", "error")


def _writer(level: str) -> Callable[[str], None]:
    def write(message: str) -> None:
        _host.log(level, str(message))

    write.__doc__ = f"Appends a {level} line to the job's log."
    return write


#: The job's log: `log.trace`, `log.debug`, `log.info`, `log.warn`, `log.error`.
log = SimpleNamespace(**{level: _writer(level) for level in LEVELS})


def run(handler: Callable[[Job], Any], job: Job, host: Any = None) -> Outcome:
    """Runs `handler` on `job`, its progress and log going to `host` (a `Recorder` by
    default), and says how it ended: `Fatal` is fatal, any other exception retryable."""
    global _host
    _host = host if host is not None else Recorder()
    try:
        return Outcome("ok", json.dumps(handler(job), separators=(",", ":")))
    except Fatal as e:
        return Outcome("fatal", _message(e))
    except Exception as e:  # noqa: BLE001: every other failure is worth another attempt
        return Outcome("retryable", _message(e))


def _message(e: Exception) -> str:
    """An exception's message, or its type's name when it has none."""
    return str(e) or type(e).__name__


try:
    # The component's bindings, which componentize-py generates at build time: imported
    # here, at the top, so that they are packed into the component.
    from componentize_py_types import Err
    from wit_world.imports import log as host_log
    from wit_world.imports import progress as host_progress
    from wit_world.imports.types import JobError_Fatal, JobError_Retryable
except ImportError:  # natively, where only `run` with a `Recorder` is of use
    pass


class _Bindings:
    """The host's `progress` and `log` interfaces, as a `Recorder`'s two methods."""

    def report(self, percent: int, message: str) -> Optional[str]:
        try:
            host_progress.report(percent, message)
        except Err as e:
            return e.value
        return None

    def log(self, level: str, message: str) -> None:
        host_log.log(host_log.Level[level.upper()], message)


def export(handler: Callable[[Job], Any]) -> type:
    """The `WitWorld` class that exports `handler` as the component's `handle`."""

    class WitWorld:
        def handle(self, context: Any) -> str:
            job = Job(
                id=context.id,
                plugin=context.plugin,
                queue=context.queue,
                attempt=context.attempt,
                max_attempts=context.max_attempts,
                raw_args=context.args,
            )
            outcome = run(handler, job, _Bindings())
            if outcome.kind == "fatal":
                raise Err(JobError_Fatal(outcome.value))
            if outcome.kind == "retryable":
                raise Err(JobError_Retryable(outcome.value))
            return outcome.value

    return WitWorld
