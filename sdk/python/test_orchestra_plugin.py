"""Unit tests of the helper's pure parts, natively: `python3 -m unittest` in this folder."""

import json
import unittest

import orchestra_plugin as orchestra


def job(args: str = "{}", attempt: int = 1) -> orchestra.Job:
    return orchestra.Job("0190b2c4-7f3a-7000-8000-000000000001", "hello", "default",
                         attempt, 3, args)


class RunTest(unittest.TestCase):
    def test_the_return_value_is_the_result_as_json(self):
        outcome = orchestra.run(lambda j: {"name": j.args["name"], "n": [1, 2]},
                                job('{"name": "ada"}'))
        self.assertEqual(outcome.kind, "ok")
        self.assertEqual(json.loads(outcome.value), {"name": "ada", "n": [1, 2]})

    def test_fatal_is_fatal_with_its_message(self):
        def handler(_):
            raise orchestra.Fatal("no such user")

        self.assertEqual(orchestra.run(handler, job()), orchestra.Outcome("fatal", "no such user"))

    def test_any_other_exception_is_retryable_with_its_message(self):
        def handler(_):
            raise ConnectionError("upstream is down")

        outcome = orchestra.run(handler, job())
        self.assertEqual(outcome, orchestra.Outcome("retryable", "upstream is down"))
        outcome = orchestra.run(lambda _: {}["missing"], job())
        self.assertEqual(outcome, orchestra.Outcome("retryable", "'missing'"))
        outcome = orchestra.run(lambda _: 1 / 0, job())
        self.assertEqual(outcome, orchestra.Outcome("retryable", "division by zero"))

    def test_an_exception_without_a_message_is_named_by_its_type(self):
        def handler(_):
            raise MemoryError()

        self.assertEqual(orchestra.run(handler, job()), orchestra.Outcome("retryable", "MemoryError"))

    def test_args_that_are_not_json_are_fatal_with_the_reason(self):
        outcome = orchestra.run(lambda j: j.args, job("{nope"))
        self.assertEqual(outcome.kind, "fatal")
        self.assertTrue(outcome.value.startswith("bad args: Expecting property name"), outcome)

    def test_a_result_that_is_not_json_is_retryable(self):
        outcome = orchestra.run(lambda _: object(), job())
        self.assertEqual(outcome.kind, "retryable")
        self.assertIn("not JSON serializable", outcome.value)

    def test_the_job_says_who_it_is(self):
        seen = orchestra.run(lambda j: [j.id, j.plugin, j.queue, j.attempt, j.max_attempts,
                                        j.raw_args], job("[1]", attempt=2))
        self.assertEqual(json.loads(seen.value),
                         ["0190b2c4-7f3a-7000-8000-000000000001", "hello", "default", 2, 3, "[1]"])


class HostTest(unittest.TestCase):
    def test_progress_and_log_lines_go_to_the_runs_host(self):
        def handler(_):
            orchestra.progress(10, "starting")
            for level in orchestra.LEVELS:
                getattr(orchestra.log, level)(f"a {level} line")
            orchestra.progress(100, "done")

        host = orchestra.Recorder()
        orchestra.run(handler, job(), host)
        self.assertEqual(host.progress, [(10, "starting"), (100, "done")])
        self.assertEqual(host.logs, [(level, f"a {level} line") for level in orchestra.LEVELS])

    def test_refused_progress_is_a_warning_and_the_job_goes_on(self):
        def handler(_):
            orchestra.progress(101, "too far")
            orchestra.progress(50, "x" * 501)
            return "went on"

        host = orchestra.Recorder()
        self.assertEqual(orchestra.run(handler, job(), host).value, '"went on"')
        self.assertEqual(host.progress, [])
        self.assertEqual(host.logs, [
            ("warn", "progress refused: percent must be 0 to 100, got 101"),
            ("warn", "progress refused: message must be at most 500 characters, got 501"),
        ])


if __name__ == "__main__":
    unittest.main()
