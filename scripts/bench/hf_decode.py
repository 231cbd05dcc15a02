#!/usr/bin/env python3
"""Decode throughput of Hugging Face transformers (PyTorch, CPU, f32) on a checkpoint.

Mirrors runtime/benches/decode.rs: a prompt of PROMPT tokens per sequence is prefilled
(not timed), then STEPS greedy decode steps with the KV cache are timed, for one sequence
and for a batch of BATCH sequences (all prompts the same length, so no padding or mask is
needed and both sides do the same arithmetic). Prints one JSON line per measurement.
"""

import argparse
import json
import time

import torch
from transformers import GPT2LMHeadModel


@torch.inference_mode()
def decode_rate(model, batch, prompt, steps, vocab):
    generator = torch.Generator().manual_seed(batch)
    ids = torch.randint(0, vocab, (batch, prompt), generator=generator)
    out = model(input_ids=ids, use_cache=True)
    past = out.past_key_values
    next_ids = out.logits[:, -1].argmax(-1, keepdim=True)
    start = time.perf_counter()
    for _ in range(steps):
        out = model(input_ids=next_ids, past_key_values=past, use_cache=True)
        past = out.past_key_values
        next_ids = out.logits[:, -1].argmax(-1, keepdim=True)
    elapsed = time.perf_counter() - start
    return batch * steps / elapsed, elapsed / steps


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model_dir")
    parser.add_argument("--prompt", type=int, default=32)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = GPT2LMHeadModel.from_pretrained(args.model_dir, dtype=torch.float32).eval()
    vocab = model.config.vocab_size
    decode_rate(model, 1, args.prompt, 4, vocab)  # warm-up
    for batch in (1, args.batch):
        runs = [decode_rate(model, batch, args.prompt, args.steps, vocab) for _ in range(args.repeats)]
        best = max(runs)
        print(json.dumps({
            "impl": f"transformers {__import__('transformers').__version__} / torch {torch.__version__}",
            "batch": batch, "prompt": args.prompt, "steps": args.steps, "threads": args.threads,
            "tokens_per_s": round(best[0], 2), "ms_per_step": round(best[1] * 1e3, 2),
            "all_tokens_per_s": [round(r[0], 2) for r in runs],
            "attn": model.config._attn_implementation,
        }))


if __name__ == "__main__":
    main()
