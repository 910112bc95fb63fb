"""The built-in arithmetic questions asked to a real model through the ``llm`` fixture.

Needs the provider (``pip install "dotevals[openai]"``) and a model::

    # OpenAI (OPENAI_API_KEY set)
    pytest examples/eval_llm.py --model openai/gpt-4o-mini --model-temperature 0 \\
        --experiment gpt-4o-mini --samples 20

    # a local Ollama (ollama pull llama3.2), or any OpenAI-compatible server
    pytest examples/eval_llm.py --model openai/llama3.2 \\
        --model-base-url http://localhost:11434/v1 --experiment llama3.2 --samples 20

A second run sends no request: the answers come from ``.dotevals/cache.db``
(``dotevals cache stats``). ``--model-rpm 60`` keeps to 60 requests a minute.
"""

from dotevals import Result, foreach
from dotevals.evaluators import numeric_match

PROMPT = "{question} Answer with the number only, nothing else."


@foreach.arithmetic("test")
async def eval_arithmetic_llm(question, answer, llm):
    reply = await llm(PROMPT.format(question=question))
    return Result(numeric_match(reply, answer), prompt=question, model_response=reply)
