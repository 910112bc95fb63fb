"""Evaluators in other processes: a custom evaluator sent with cloudpickle, and the
evaluators and metrics imported without jsonschema."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import cloudpickle

from dotevals.evaluators import (
    evaluator,
)
from dotevals.metrics import accuracy


def test_custom_evaluator_runs_in_another_process_after_cloudpickle():
    @evaluator(metrics=accuracy())
    def starts_with(result, prefix="ab"):
        return result.startswith(prefix)

    program = textwrap.dedent(
        """
        import sys, cloudpickle
        fn = cloudpickle.loads(sys.stdin.buffer.read())
        score = fn("abc")
        print(score.name, score.value, score.metadata, [m.name for m in score.metrics])
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program],
        input=cloudpickle.dumps(starts_with),
        capture_output=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.decode().strip() == (
        "starts_with True {'result': 'abc', 'prefix': 'ab'} ['accuracy']"
    )


def test_evaluators_and_metrics_import_without_jsonschema():
    code = (
        "import sys, dotevals.evaluators, dotevals.metrics\n"
        "assert 'jsonschema' not in sys.modules, 'imported jsonschema'\n"
        "from dotevals.evaluators import valid_json\n"
        "assert valid_json('{}', {'type': 'object'}).value is True\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
