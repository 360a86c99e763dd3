"""`{{name}}`: an Orchestra plugin that greets the name in its args.

Args: `{"name": "..."}`. Result: `{"text": "hello, ..."}`. Args without a `name` fail the
job at once (`Fatal`); an empty name fails it retryably (any other exception), to show
the other kind. `orchestra_plugin.py` is the helper module: args, progress, log, errors.
"""

import orchestra_plugin as orchestra


def handle(job: orchestra.Job) -> dict:
    orchestra.log.info(f"attempt {job.attempt} of {job.max_attempts}")
    args = job.args
    if not isinstance(args, dict) or not isinstance(args.get("name"), str):
        raise orchestra.Fatal('bad args: expected {"name": "..."}')
    orchestra.progress(50, "args read")
    if not args["name"].strip():
        raise ValueError("the name is empty")
    orchestra.progress(100, "done")
    return {"text": f"hello, {args['name']}"}


# The class componentize-py exports as the world `task-handler`.
WitWorld = orchestra.export(handle)
