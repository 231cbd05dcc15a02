#!/usr/bin/env python3
"""Reference generation throughput on the load generator's prompts, in-process, no HTTP.

    reference_generate.py transformers MODEL_DIR [--batch 16] [--max-tokens 64]
    reference_generate.py ctranslate2 MODEL_DIR [--batch 16] [--max-tokens 64]

`transformers`: `GPT2LMHeadModel.generate` (f32, greedy) on the batch of prompts at once.
`ctranslate2`: the checkpoint converted by CTranslate2's own converter (int8 weights, cached
next to the checkpoint as `<MODEL_DIR>-ct2-int8`), `Generator.generate_batch` with
`compute_type="int8_float32"` (what CTranslate2 runs int8_float16 as on a CPU), greedy.
Both run the batch (16 prompts together) and a single prompt; the best of `--repeats` is
reported as one JSON line each, tokens/s = generated tokens / wall time of the call.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serve_load import prompt_for  # noqa: E402  the same prompts the agent is sent


def transformers_runner(model_dir, max_tokens):
    import torch
    from transformers import AutoTokenizer, GPT2LMHeadModel

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = GPT2LMHeadModel.from_pretrained(model_dir, dtype=torch.float32).eval()
    label = f"transformers {__import__('transformers').__version__} / torch {torch.__version__}"

    @torch.inference_mode()
    def generate(prompts):
        # Every prompt is the same number of tokens, so no padding is needed.
        ids = torch.tensor([tokenizer(p)["input_ids"] for p in prompts])
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            do_sample=False,
            max_new_tokens=max_tokens,
            pad_token_id=tokenizer.eos_token_id,
        )
        new = out[:, ids.shape[1]:]
        # Tokens after an EOS are padding, not generated work.
        return sum(int(row_len) for row_len in count_until_eos(new, tokenizer.eos_token_id))

    return label, generate


def count_until_eos(rows, eos):
    for row in rows.tolist():
        yield row.index(eos) + 1 if eos in row else len(row)


def ctranslate2_runner(model_dir, max_tokens):
    import ctranslate2
    from transformers import AutoTokenizer

    converted = model_dir.rstrip("/") + "-ct2-int8"
    if not os.path.exists(os.path.join(converted, "model.bin")):
        ctranslate2.converters.TransformersConverter(model_dir).convert(
            converted, quantization="int8", force=True
        )
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    generator = ctranslate2.Generator(converted, device="cpu", compute_type="int8_float32")
    label = f"ctranslate2 {ctranslate2.__version__} int8_float32"

    def generate(prompts):
        tokens = [tokenizer.convert_ids_to_tokens(tokenizer(p)["input_ids"]) for p in prompts]
        results = generator.generate_batch(
            tokens,
            max_length=max_tokens,
            sampling_topk=1,
            include_prompt_in_result=False,
        )
        return sum(len(r.sequences_ids[0]) for r in results)

    return label, generate


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("implementation", choices=["transformers", "ctranslate2"])
    parser.add_argument("model_dir")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--prompt-words", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    runner = {"transformers": transformers_runner, "ctranslate2": ctranslate2_runner}
    label, generate = runner[args.implementation](args.model_dir, args.max_tokens)
    generate([prompt_for(0, args.prompt_words)])  # warm-up
    for batch in (1, args.batch):
        prompts = [prompt_for(i, args.prompt_words) for i in range(batch)]
        rates = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            tokens = generate(prompts)
            rates.append(tokens / (time.perf_counter() - start))
        print(json.dumps({
            "impl": label, "batch": batch, "max_tokens": args.max_tokens,
            "tokens_per_s": round(max(rates), 1), "all_tokens_per_s": [round(r, 1) for r in rates],
        }), flush=True)


if __name__ == "__main__":
    main()
