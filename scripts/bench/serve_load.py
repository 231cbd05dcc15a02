#!/usr/bin/env python3
"""Load generator for a serving system, in the manner of vLLM's benchmark_serving.

Streamed requests (SSE) go to the agent's generate route (`--api native`) or to any
OpenAI `/v1/completions` server (`--api openai`: the agent, llama-server), either closed
loop (N clients, each sending its requests one after another) or open loop (`--rate`:
Poisson arrivals). The run reports output throughput, time to first token (TTFT) and
inter-token latency (ITL) percentiles as one JSON line. Standard library only.

    serve_load.py --url http://127.0.0.1:8080 --api-key KEY --deployment ID \
        [--api native|openai] [--clients 16] [--requests-per-client 1] \
        [--rate RPS --requests N] [--max-tokens 64] [--prompt-words 16]

TTFT runs from sending the request to the first chunk holding text; ITL is the gap between
chunks holding text; TPOT is a request's time from its first to its last chunk divided by
its tokens after the first (counted from usage), so it stays per token where a server puts
two tokens in one chunk. `short_completions` counts requests that produced fewer than
`--max-tokens` tokens (an end-of-text token on a server that honours it).

Prompts are `--prompt-words` common English words, each a single GPT-2 token, different
per request; the reported `prompt_tokens` is what the agent counted.
"""

import argparse
import http.client
import json
import random
import statistics
import threading
import time
import urllib.parse

# Words that GPT-2's tokenizer keeps whole (with their leading space): a prompt of N of
# them is N tokens (N + 0 or 1 for the first, which has no leading space).
WORDS = (
    "the of and to in is was for on that with as by at from his her it an were are which "
    "this be or has had but not they she he we you one all new more time year people day "
    "city world house water game team music party state school family group light"
).split()


def prompt_for(index, words):
    return " ".join(WORDS[(index * 7 + j * 3) % len(WORDS)] for j in range(words))


def percentile(values, q):
    if not values:
        return None
    ordered = sorted(values)
    rank = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[rank]


def _open_stream(url, path, body, headers):
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    connection.request("POST", path, body=json.dumps(body), headers=headers)
    response = connection.getresponse()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {response.read()[:300]!r}")
    return connection, response


def _events(response):
    """The `data:` payloads of an SSE stream, each with its arrival time."""
    for raw in response:
        line = raw.decode().rstrip("\n")
        if line.startswith("data:"):
            yield line[5:].strip(), time.perf_counter()


def stream_native(url, api_key, model, prompt, max_tokens):
    """The agent's own generate route: one `token` event per token, then the result.
    Returns (arrival time of each token event, completion tokens, prompt tokens)."""
    connection, response = _open_stream(
        url,
        f"/v1/deployments/{model}/generate",
        {"prompt": prompt, "stream": True, "parameters": {"temperature": 0, "maxTokens": max_tokens}},
        {"content-type": "application/json", "x-api-key": api_key},
    )
    times, result = [], None
    for data, now in _events(response):
        event = json.loads(data)
        if "token" in event:
            times.append(now)
        else:
            result = event
    connection.close()
    if result is None or "usage" not in result:
        raise RuntimeError(f"stream ended without a result: {result!r}")
    usage = result["usage"]
    return times, usage["completionTokens"], usage["promptTokens"]


def stream_openai(url, api_key, model, prompt, max_tokens):
    """OpenAI `/v1/completions` (the agent's or llama-server's), streamed.

    Every system is asked for exactly `max_tokens` tokens: `ignore_eos` makes llama-server
    run past an end-of-text token (the agent ignores the unknown field, and reports a short
    completion in `usage`, counted by the caller). Tokens are counted from `usage`, not from
    chunks: a chunk holding text is one token on the agent; llama-server may hold a token
    back until its UTF-8 is complete, so a chunk can carry more than one.
    """
    connection, response = _open_stream(
        url,
        "/v1/completions",
        {
            "model": model,
            "prompt": prompt,
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
            "ignore_eos": True,
        },
        {"content-type": "application/json", "authorization": f"Bearer {api_key}"},
    )
    times, usage = [], None
    for data, now in _events(response):
        if data == "[DONE]":
            break
        event = json.loads(data)
        if "error" in event:
            raise RuntimeError(f"stream error: {event['error']}")
        if event.get("usage"):
            usage = event["usage"]
        for choice in event.get("choices") or []:
            if choice.get("text"):
                times.append(now)
    connection.close()
    if usage is None:
        raise RuntimeError("stream ended without usage")
    return times, usage["completion_tokens"], usage["prompt_tokens"]


API = {"native": stream_native, "openai": stream_openai}


def one_request(args, index):
    """(ttft_s, [inter-token gaps], tpot_s, completion tokens, prompt tokens) of request
    `index`; tpot_s (time per output token after the first) is None below 2 tokens."""
    sent = time.perf_counter()
    times, completion, prompt_tokens = API[args.api](
        args.url, args.api_key, args.deployment, prompt_for(index, args.prompt_words), args.max_tokens
    )
    ttft = times[0] - sent if times else None
    gaps = [b - a for a, b in zip(times, times[1:])]
    tpot = (times[-1] - times[0]) / (completion - 1) if times and completion > 1 else None
    return ttft, gaps, tpot, completion, prompt_tokens


class Tally:
    """What the requests of one run measured, gathered from their threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.ttfts, self.gaps, self.tpots, self.prompts, self.errors = [], [], [], [], []
        self.completion, self.short = 0, 0

    def record(self, args, index):
        try:
            ttft, gaps, tpot, completion, prompt_tokens = one_request(args, index)
        except Exception as error:  # reported, not fatal to the other requests
            with self.lock:
                self.errors.append(str(error))
            return
        with self.lock:
            if ttft is not None:
                self.ttfts.append(ttft)
            self.gaps.extend(gaps)
            if tpot is not None:
                self.tpots.append(tpot)
            self.completion += completion
            self.short += completion < args.max_tokens
            self.prompts.append(prompt_tokens)


def closed_loop(args, tally):
    """`--clients` clients, each sending `--requests-per-client` requests one after another."""

    def client(client_index):
        for r in range(args.requests_per_client):
            tally.record(args, client_index * args.requests_per_client + r)

    return [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]


def open_loop(args, tally):
    """`--requests` requests arriving as a Poisson process of `--rate` per second (seeded):
    each is sent at its arrival time whether or not earlier ones have finished."""
    rng = random.Random(args.seed)
    arrivals, t = [], 0.0
    for _ in range(args.requests):
        arrivals.append(t)
        t += rng.expovariate(args.rate)
    origin = time.perf_counter()

    def arrival(index):
        delay = origin + arrivals[index] - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        tally.record(args, index)

    return [threading.Thread(target=arrival, args=(i,)) for i in range(args.requests)]


def run(args):
    tally = Tally()
    threads = (open_loop if args.rate else closed_loop)(args, tally)
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    ms = lambda s: None if s is None else round(s * 1000, 2)  # noqa: E731
    summary = {
        "api": args.api,
        "deployment": args.deployment,
        "mode": "poisson" if args.rate else "closed",
    }
    if args.rate:
        summary["offered_rps"] = args.rate
    else:
        summary["clients"] = args.clients
    return {
        **summary,
        "requests": len(tally.prompts),
        "errors": len(tally.errors),
        "first_error": tally.errors[0] if tally.errors else None,
        "short_completions": tally.short,
        "prompt_tokens": statistics.mean(tally.prompts) if tally.prompts else None,
        "completion_tokens": tally.completion,
        "elapsed_s": round(elapsed, 3),
        "throughput_tok_s": round(tally.completion / elapsed, 1),
        "throughput_rps": round(len(tally.prompts) / elapsed, 3),
        "ttft_ms_p50": ms(percentile(tally.ttfts, 50)),
        "ttft_ms_p99": ms(percentile(tally.ttfts, 99)),
        "itl_ms_p50": ms(percentile(tally.gaps, 50)),
        "itl_ms_p99": ms(percentile(tally.gaps, 99)),
        "tpot_ms_p50": ms(percentile(tally.tpots, 50)),
        "tpot_ms_p99": ms(percentile(tally.tpots, 99)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--api-key", default="none")
    parser.add_argument("--api", choices=sorted(API), default="native")
    parser.add_argument("--deployment", required=True, help="deployment id (OpenAI: `model`)")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests-per-client", type=int, default=1)
    parser.add_argument("--rate", type=float, default=None, help="Poisson arrivals per second")
    parser.add_argument("--requests", type=int, default=32, help="requests of a --rate run")
    parser.add_argument("--seed", type=int, default=0, help="seed of the --rate arrivals")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--prompt-words", type=int, default=16)
    parser.add_argument("--label", default=None)
    args = parser.parse_args()
    summary = run(args)
    if args.label:
        summary = {"label": args.label, **summary}
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
