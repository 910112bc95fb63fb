"""Heavy local scoring with no pytest command line: a Runner with worker processes.

Scores 20 000 generated Python snippets against their references (parse both,
compare the syntax trees) on every physical core, streaming the rows from a
generator, and prints the summary.

    python examples/score_locally.py
"""

import ast
import functools

from dotevals import Result, Score, foreach
from dotevals.metrics import accuracy, mean
from dotevals.runners import Runner


def snippets(n: int):
    """Pairs of (generated code, reference code); every 7th one is wrong."""
    for i in range(n):
        reference = f"def f(x):\n    return x * {i} + {i % 13}\n"
        generated = reference.replace("*", "+") if i % 7 == 0 else reference
        yield generated, reference


def syntax_tree(code: str) -> str:
    return ast.dump(ast.parse(code), include_attributes=False)


@foreach("generated,reference", snippets(20_000))
def eval_code(generated, reference, normalise):
    return Result(
        Score("same_ast", normalise(generated) == normalise(reference), [accuracy()]),
        Score("lines", generated.count("\n"), [mean()]),
    )


if __name__ == "__main__":
    runner = Runner(experiment_name="local-scoring", workers="auto")
    runner.run([functools.partial(eval_code, normalise=syntax_tree)])
    print(runner.results["eval_code"].metrics)
