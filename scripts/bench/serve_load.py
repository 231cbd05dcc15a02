#!/usr/bin/env python3
"""Load generator for a running gpu-agent, in the manner of vLLM's benchmark_serving.

N concurrent clients each send streamed generate requests (SSE) to one deployment, one
after another, and the run reports output throughput, time to first token (TTFT) and
inter-token latency (ITL) percentiles as one JSON line. Standard library only.

    serve_load.py --url http://127.0.0.1:8080 --api-key KEY --deployment ID \
        [--clients 16] [--requests-per-client 1] [--max-tokens 64] [--prompt-words 16]

Prompts are `--prompt-words` common English words, each a single GPT-2 token, different
per request; the reported `prompt_tokens` is what the agent counted.
"""

import argparse
import http.client
import json
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


def stream_one(url, api_key, deployment, prompt, max_tokens):
    """One streamed request: (ttft_s, [inter-token gaps], completion tokens, prompt tokens)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=600)
    body = json.dumps(
        {
            "prompt": prompt,
            "stream": True,
            "parameters": {"temperature": 0, "maxTokens": max_tokens},
        }
    )
    start = time.perf_counter()
    connection.request(
        "POST",
        f"/v1/deployments/{deployment}/generate",
        body=body,
        headers={"content-type": "application/json", "x-api-key": api_key},
    )
    response = connection.getresponse()
    if response.status != 200:
        raise RuntimeError(f"HTTP {response.status}: {response.read()[:300]!r}")
    ttft, last, gaps, result = None, None, [], None
    for raw in response:
        line = raw.decode().rstrip("\n")
        if not line.startswith("data:"):
            continue
        event = json.loads(line[5:])
        now = time.perf_counter()
        if "token" in event:
            if ttft is None:
                ttft = now - start
            else:
                gaps.append(now - last)
            last = now
        else:
            result = event
    connection.close()
    if result is None or "usage" not in result:
        raise RuntimeError(f"stream ended without a result: {result!r}")
    usage = result["usage"]
    return ttft, gaps, usage["completionTokens"], usage["promptTokens"]


def run(args):
    lock = threading.Lock()
    ttfts, gaps, completion, prompts, errors = [], [], [0], [], []

    def client(client_index):
        for r in range(args.requests_per_client):
            prompt = prompt_for(client_index * args.requests_per_client + r, args.prompt_words)
            try:
                ttft, g, n, p = stream_one(
                    args.url, args.api_key, args.deployment, prompt, args.max_tokens
                )
            except Exception as error:  # reported, not fatal to the other clients
                with lock:
                    errors.append(str(error))
                continue
            with lock:
                if ttft is not None:
                    ttfts.append(ttft)
                gaps.extend(g)
                completion[0] += n
                prompts.append(p)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    ms = lambda s: None if s is None else round(s * 1000, 2)  # noqa: E731
    return {
        "deployment": args.deployment,
        "clients": args.clients,
        "requests": len(prompts),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "prompt_tokens": statistics.mean(prompts) if prompts else None,
        "completion_tokens": completion[0],
        "elapsed_s": round(elapsed, 3),
        "throughput_tok_s": round(completion[0] / elapsed, 1),
        "ttft_ms_p50": ms(percentile(ttfts, 50)),
        "ttft_ms_p99": ms(percentile(ttfts, 99)),
        "itl_ms_p50": ms(percentile(gaps, 50)),
        "itl_ms_p99": ms(percentile(gaps, 99)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--deployment", required=True)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests-per-client", type=int, default=1)
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
