"""The handler's unit tests, natively: `python3 -m unittest`."""

import json
import unittest

import orchestra_plugin as orchestra
from app import handle


def job(args) -> orchestra.Job:
    return orchestra.Job("0190b2c4-7f3a-7000-8000-000000000001", "{{name}}", "default", 1, 3,
                         json.dumps(args))


class HandleTest(unittest.TestCase):
    def test_greets_the_name(self):
        host = orchestra.Recorder()
        outcome = orchestra.run(handle, job({"name": "world"}), host)
        self.assertEqual(outcome, orchestra.Outcome("ok", '{"text":"hello, world"}'))
        self.assertEqual(host.progress, [(50, "args read"), (100, "done")])
        self.assertEqual(host.logs, [("info", "attempt 1 of 3")])

    def test_an_empty_name_is_retryable_and_no_name_fatal(self):
        outcome = orchestra.run(handle, job({"name": " "}))
        self.assertEqual(outcome, orchestra.Outcome("retryable", "the name is empty"))
        self.assertEqual(orchestra.run(handle, job({})).kind, "fatal")


if __name__ == "__main__":
    unittest.main()
