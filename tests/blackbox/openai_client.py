"""Drives a running gpu-agent with the official `openai` Python client, as a new user would.

Run by tests/blackbox/openai_client.rs, which starts the agent, deploys the tiny GPT-2
fixture and passes what to expect in the environment:

  AGENT_BASE_URL  http://127.0.0.1:PORT/v1
  AGENT_API_KEY   a configured API key
  AGENT_MODEL     the modelId deployed; AGENT_DEPLOYMENT its deployment id
  GOLDEN_PROMPT, GOLDEN_TEXT, GOLDEN_TOKENS  a reference greedy continuation

Every check is an assert; the first failure exits non-zero with its message.
"""

import math
import os
import sys

import openai
from openai import OpenAI

base_url = os.environ["AGENT_BASE_URL"]
api_key = os.environ["AGENT_API_KEY"]
model = os.environ["AGENT_MODEL"]
deployment = os.environ["AGENT_DEPLOYMENT"]
prompt = os.environ["GOLDEN_PROMPT"]
golden_text = os.environ["GOLDEN_TEXT"]
golden_tokens = int(os.environ["GOLDEN_TOKENS"])

# No retries: a refusal must surface as the client's exception, not be retried away.
client = OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=60)


def check(name, condition, detail=""):
    assert condition, f"{name}: {detail}"
    print(f"ok: {name}")


# models.list: the deployment under its id and its modelId.
ids = [m.id for m in client.models.list()]
check("models.list", ids == [deployment, model], ids)
check("models.retrieve", client.models.retrieve(model).id == model)

# A greedy completion equals the Hugging Face reference.
greedy = client.completions.create(
    model=model, prompt=prompt, max_tokens=golden_tokens, temperature=0
)
check("greedy completion", greedy.choices[0].text == golden_text, repr(greedy.choices[0].text))
check("usage", greedy.usage.completion_tokens == golden_tokens, greedy.usage)

# Streaming gives the same text in pieces.
pieces = [
    chunk.choices[0].text
    for chunk in client.completions.create(
        model=model, prompt=prompt, max_tokens=golden_tokens, temperature=0, stream=True
    )
    if chunk.choices
]
check("streaming", "".join(pieces) == golden_text, pieces)

# logprobs: the chosen token and 3 alternatives per step; greedy picks the best.
scored = client.completions.create(
    model=model, prompt=prompt, max_tokens=5, temperature=0, logprobs=3
)
lp = scored.choices[0].logprobs
check("logprobs shape", len(lp.tokens) == 5 and len(lp.top_logprobs) == 5, lp)
check("logprobs concatenate to the text", "".join(lp.tokens) == scored.choices[0].text, lp.tokens)
check("text_offset starts after the prompt", lp.text_offset[0] == len(prompt), lp.text_offset)
for step, (chosen, top) in enumerate(zip(lp.token_logprobs, lp.top_logprobs)):
    check(f"step {step}: 3 alternatives", len(top) == 3, top)
    check(f"step {step}: greedy takes the likeliest", abs(chosen - max(top.values())) < 1e-6, (chosen, top))
    check(f"step {step}: a log-probability", chosen <= 0 and math.isfinite(chosen), chosen)

# echo scoring: max_tokens 0 with echo scores the prompt without generating.
echoed = client.completions.create(
    model=model, prompt=prompt, max_tokens=0, echo=True, logprobs=0
)
elp = echoed.choices[0].logprobs
check("echo returns the prompt", echoed.choices[0].text == prompt, echoed.choices[0].text)
check("echo scores every prompt token", len(elp.tokens) == echoed.usage.prompt_tokens, elp.tokens)
check("the first prompt token is unscored", elp.token_logprobs[0] is None, elp.token_logprobs)
check(
    "the other prompt tokens are scored",
    all(x is not None and x <= 0 for x in elp.token_logprobs[1:]),
    elp.token_logprobs,
)
check("nothing generated", echoed.usage.completion_tokens == 0, echoed.usage)

# n=3: three choices, each its own sequence, reproducible from the seed.
three = client.completions.create(
    model=model, prompt=prompt, max_tokens=6, temperature=1.2, top_p=1, n=3, seed=5
)
check("n=3", [c.index for c in three.choices] == [0, 1, 2], three.choices)
again = client.completions.create(
    model=model, prompt=prompt, max_tokens=6, temperature=1.2, top_p=1, n=3, seed=5
)
check("n=3 replays from the seed", [c.text for c in three.choices] == [c.text for c in again.choices])

# Chat, whole and streamed.
messages = [{"role": "user", "content": prompt}]
chat = client.chat.completions.create(model=model, messages=messages, max_tokens=6, temperature=0)
reply = chat.choices[0].message
check("chat", reply.role == "assistant" and isinstance(reply.content, str), chat)
streamed = client.chat.completions.create(
    model=model,
    messages=messages,
    max_tokens=6,
    temperature=0,
    stream=True,
    stream_options={"include_usage": True},
)
deltas, usage = [], None
for chunk in streamed:
    if chunk.usage is not None:
        usage = chunk.usage
    for choice in chunk.choices:
        deltas.append(choice.delta.content or "")
check("chat streaming", "".join(deltas) == reply.content, deltas)
check("chat streaming usage", usage is not None and usage.completion_tokens == chat.usage.completion_tokens, usage)
chat_lp = client.chat.completions.create(
    model=model, messages=messages, max_tokens=3, temperature=0, logprobs=True, top_logprobs=2
)
content = chat_lp.choices[0].logprobs.content
check("chat logprobs", len(content) == 3 and all(len(t.top_logprobs) == 2 for t in content), content)

# The client's exception types for bad input.
try:
    client.completions.create(model=model, prompt=prompt, temperature=5)
    raise AssertionError("temperature 5 was accepted")
except openai.BadRequestError as error:
    check("BadRequestError", error.status_code == 400 and "temperature" in str(error), error)
try:
    client.chat.completions.create(
        model=model, messages=messages, tools=[{"type": "function", "function": {"name": "f"}}]
    )
    raise AssertionError("tools were accepted")
except openai.BadRequestError as error:
    check("BadRequestError for tools", error.body["param"] == "tools", error.body)
try:
    OpenAI(base_url=base_url, api_key="not-the-key", max_retries=0).models.list()
    raise AssertionError("a wrong key was accepted")
except openai.AuthenticationError as error:
    check("AuthenticationError", error.status_code == 401, error)
try:
    client.completions.create(model="no-such-model", prompt=prompt)
    raise AssertionError("an unknown model was accepted")
except openai.NotFoundError as error:
    check("NotFoundError", error.code == "model_not_found", error)

print("all checks passed")
sys.exit(0)
