#!/usr/bin/env python3
"""Sweeps of one serving system with serve_load.py, one JSON line per point.

    sweep.py --system "llama.cpp q8_0" --api openai --url URL --deployment MODEL \
        [--first-burst] [--concurrency 1,2,4,8,16] [--requests-per-client 2] \
        [--load 0.2,0.4,0.6,0.8,1.0] [--poisson-requests 64] [--max-tokens 64]

1. `--first-burst`: 16 simultaneous requests, sent first (run this right after the system
   turns ready: it is the burst users meet after a deploy, cold caches and all).
2. Closed loop: for each concurrency C, C clients each send `--requests-per-client`
   requests back to back (throughput against concurrency).
3. Open loop: the system's capacity is the request rate it sustained at the highest
   concurrency of step 2; requests then arrive as a Poisson process at each `--load`
   fraction of that capacity, `--poisson-requests` per point (latency against load).
Every line carries `system` and `kind` (first_burst, concurrency, poisson); Poisson lines
also `load_fraction` and `capacity_rps`.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serve_load  # noqa: E402


def floats(text):
    return [float(x) for x in text.split(",") if x]


def ints(text):
    return [int(x) for x in text.split(",") if x]


def point(args, **overrides):
    """One serve_load run with the sweep's connection settings and `overrides`."""
    settings = argparse.Namespace(
        url=args.url,
        api_key=args.api_key,
        api=args.api,
        deployment=args.deployment,
        clients=1,
        requests_per_client=1,
        rate=None,
        requests=0,
        seed=args.seed,
        max_tokens=args.max_tokens,
        prompt_words=args.prompt_words,
    )
    for key, value in overrides.items():
        setattr(settings, key, value)
    return serve_load.run(settings)


def emit(args, kind, summary, **extra):
    print(json.dumps({"system": args.system, "kind": kind, **extra, **summary}), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--system", required=True, help="the name plots give this system")
    parser.add_argument("--url", required=True)
    parser.add_argument("--api", choices=sorted(serve_load.API), default="openai")
    parser.add_argument("--api-key", default="none")
    parser.add_argument("--deployment", required=True)
    parser.add_argument("--first-burst", action="store_true")
    parser.add_argument("--burst", type=int, default=16, help="requests of the first burst")
    parser.add_argument("--concurrency", type=ints, default=ints("1,2,4,8,16"))
    parser.add_argument("--requests-per-client", type=int, default=2)
    parser.add_argument("--load", type=floats, default=floats("0.2,0.4,0.6,0.8,1.0"))
    parser.add_argument("--poisson-requests", type=int, default=64)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--prompt-words", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    if args.first_burst:
        emit(args, "first_burst", point(args, clients=args.burst))
    capacity = None
    for clients in args.concurrency:
        summary = point(args, clients=clients, requests_per_client=args.requests_per_client)
        emit(args, "concurrency", summary)
        capacity = summary["throughput_rps"]
    if not capacity or not args.load:
        return
    for fraction in args.load:
        summary = point(args, rate=fraction * capacity, requests=args.poisson_requests)
        emit(args, "poisson", summary, load_fraction=fraction, capacity_rps=capacity)


if __name__ == "__main__":
    main()
