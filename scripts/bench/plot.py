#!/usr/bin/env python3
"""PNG plots of peers.sh's JSON lines: throughput against concurrency, TTFT p99 against load.

    plot.py RESULTS.jsonl [--out docs/bench]

One line per system from sweep.py's `concurrency` and `poisson` lines; each system's first
burst is a hollow marker at its burst size; the in-process references (reference_generate.py:
no server, no latency) are single points at their batch sizes.
"""

import argparse
import json
import os
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip().startswith("{")]


def reference_name(line):
    impl = line["impl"]
    if impl.startswith("ctranslate2"):
        return "CTranslate2 Python int8 (generate_batch)"
    return "transformers (batched generate)"


def throughput_plot(lines, out):
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=90)
    sweeps = defaultdict(list)
    for line in lines:
        if line.get("kind") == "concurrency":
            sweeps[line["system"]].append((line["clients"], line["throughput_tok_s"]))
    colors = {}
    for system, points in sweeps.items():
        points.sort()
        (handle,) = ax.plot(*zip(*points), marker="o", label=system)
        colors[system] = handle.get_color()
    for line in lines:
        if line.get("kind") == "first_burst" and line["system"] in colors:
            ax.plot(line["clients"], line["throughput_tok_s"], marker="o", markersize=9,
                    markerfacecolor="none", color=colors[line["system"]], linestyle="none")
    references = defaultdict(list)
    for line in lines:
        if "impl" in line:
            references[reference_name(line)].append((line["batch"], line["tokens_per_s"]))
    for name, points in references.items():
        ax.plot(*zip(*sorted(points)), marker="s", linestyle=":", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("concurrent streams (closed loop)")
    ax.set_ylabel("output tokens/s")
    ax.set_title("Throughput against concurrency (hollow: first burst after start)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "throughput_vs_concurrency.png"))
    plt.close(fig)


def latency_plot(lines, out):
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=90)
    sweeps = defaultdict(list)
    for line in lines:
        if line.get("kind") == "poisson" and line["ttft_ms_p99"] is not None:
            sweeps[line["system"]].append((line["load_fraction"] * 100, line["ttft_ms_p99"]))
    for system, points in sweeps.items():
        points.sort()
        capacity = next(l["capacity_rps"] for l in lines
                        if l.get("kind") == "poisson" and l["system"] == system)
        ax.plot(*zip(*points), marker="o", label=f"{system} (100 % = {capacity:.2f} req/s)")
    ax.set_yscale("log")
    ax.set_xlabel("offered load, % of the system's own 16-stream capacity (Poisson arrivals)")
    ax.set_ylabel("TTFT p99 (ms)")
    ax.set_title("Time to first token against load", fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(out, "ttft_p99_vs_load.png"))
    plt.close(fig)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results")
    parser.add_argument("--out", default="docs/bench")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    lines = load(args.results)
    throughput_plot(lines, args.out)
    latency_plot(lines, args.out)
    print(f"plots: {args.out}/throughput_vs_concurrency.png, {args.out}/ttft_p99_vs_load.png")


if __name__ == "__main__":
    main()
