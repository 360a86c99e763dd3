"""`hello_python`: the example plugin in Python, on the helper module `orchestra_plugin`
(`sdk/python`).

Args (a JSON object, all fields optional):

- `name` (default "world"): who to greet;
- `steps` (integer, default 0): report progress and log a line that many times;
- `fail`: "retryable" raises an ordinary exception, which the host retries; "fatal"
  raises `Fatal`, which fails the job at once;
- `spin` (boolean): loop until the host's fuel budget stops the run.

Result: `{"text": "hello, NAME", "attempt": n}`.

Built by `scripts/plugins.sh` with componentize-py into `hello_python.wasm`.
"""

import orchestra_plugin as orchestra


def handle(job: orchestra.Job) -> dict:
    args = job.args
    orchestra.log.info(f"hello_python: attempt {job.attempt} of {job.max_attempts}")
    steps = args.get("steps", 0)
    for step in range(1, steps + 1):
        orchestra.progress(step * 100 // steps, f"step {step} of {steps}")
        orchestra.log.info(f"step {step} done")
    fail = args.get("fail")
    if fail == "fatal":
        raise orchestra.Fatal(f"attempt {job.attempt} failed fatally, as asked")
    if fail == "retryable":
        raise ConnectionError(f"attempt {job.attempt} failed, as asked")
    while args.get("spin"):
        pass  # only the host's fuel budget ends this
    name = args.get("name", "world")
    print(f"hello_python: greeting {name}")  # stdout goes to the job's log too
    return {"text": f"hello, {name}", "attempt": job.attempt}


WitWorld = orchestra.export(handle)
