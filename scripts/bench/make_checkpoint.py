#!/usr/bin/env python3
"""A GPT-2-small-shaped checkpoint with random weights, for the decode benchmark.

n_embd 768, 12 layers, 12 heads, vocab 50257, n_positions 1024 (124M parameters), saved by
transformers (config.json, model.safetensors) with GPT-2's tokenizer.json beside it.
Default output: target/bench/gpt2-small-random (git-ignored).
"""

import argparse
import shutil
from pathlib import Path

import torch
from transformers import GPT2Config, GPT2LMHeadModel

REPO = Path(__file__).resolve().parents[2]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "target" / "bench" / "gpt2-small-random")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    config = GPT2Config(n_embd=768, n_layer=12, n_head=12, vocab_size=50257, n_positions=1024)
    model = GPT2LMHeadModel(config).eval()
    model.save_pretrained(args.out, safe_serialization=True)
    shutil.copy(REPO / "tests" / "fixtures" / "tokenizers" / "gpt2" / "tokenizer.json", args.out)
    params = sum(p.numel() for p in model.parameters())
    print(f"{args.out}: GPT-2 small shape, {params / 1e6:.1f}M parameters")


if __name__ == "__main__":
    main()
