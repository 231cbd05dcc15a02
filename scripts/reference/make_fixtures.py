#!/usr/bin/env python3
"""Tiny random checkpoints and Hugging Face transformers' outputs for them.

For each model named on the command line this writes, under OUT/<name>/:
  config.json, model.safetensors, generation_config.json, tokenizer files (save_pretrained);
  reference_step0_logits.safetensors  full next-token logits after each prompt (promptN, f32);
  golden.json  per prompt: prompt_ids, greedy_ids (24 new tokens), greedy_text,
               step_margins (top-1 minus top-2 logit at every step) and step0_top5.

Greedy decoding is the argmax loop over the model's forward with its KV cache (what
`generate(do_sample=False)` does, without stopping at EOS, so every case has 24 tokens and a
margin at every step). Where a margin is tiny, float noise may legitimately flip that token;
tests compare only up to the first step whose margin is below 5e-4.

Usage (from the repository root, in a venv with requirements.txt installed):
  python scripts/reference/make_fixtures.py t5-v1_0-tiny
  python scripts/reference/make_fixtures.py --out /tmp/fixtures gpt2-tiny t5-tiny t5-v1_0-tiny
Tokenizers are read from tests/fixtures/tokenizers/ (no Hugging Face Hub access needed).

The rest of the combined tests/fixtures/golden.json (gpt2_tokenization, t5_tokenization,
each model's `ctranslate2` section) and the CTranslate2 conversions with their manifests
(tests/fixtures/ct2-reference/) come from make_golden_sections.py.
"""

import argparse
import json
import shutil
from pathlib import Path

import torch
import transformers
from safetensors.torch import save_file
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    GPT2TokenizerFast,
    PreTrainedTokenizerFast,
    T5Config,
    T5ForConditionalGeneration,
)

REPO = Path(__file__).resolve().parents[2]
TOKENIZERS = REPO / "tests" / "fixtures" / "tokenizers"
MAX_NEW_TOKENS = 24

GPT2_PROMPTS = [
    "Hello, my name is",
    "The quick brown fox",
    "In 1492,",
    "def main():\n    ",
    "GPU inference agents",
]
T5_PROMPTS = [
    "translate English to German: The house is wonderful.",
    "summarize: GPUs run models fast.",
    "Answer the question: what is the capital of France?",
    "cola sentence: The dog barked.",
    "Hello",
]

T5_TINY = dict(
    vocab_size=32128, d_model=32, d_kv=8, d_ff=64, num_layers=2, num_decoder_layers=2,
    num_heads=4, relative_attention_num_buckets=32, relative_attention_max_distance=128,
    decoder_start_token_id=0, pad_token_id=0, eos_token_id=1,
)

# name -> (architecture, config keyword arguments, seed)
MODELS = {
    "gpt2-tiny": ("gpt2", dict(n_embd=32, n_layer=2, n_head=2, n_positions=128,
                               initializer_range=0.2), 7),
    # Flan-T5 / T5 v1.1 shape: gated-gelu feed-forward, untied lm_head.
    "t5-tiny": ("t5", dict(T5_TINY, feed_forward_proj="gated-gelu", tie_word_embeddings=False), 11),
    # T5 v1.0 shape: relu feed-forward, lm_head tied to the shared embedding (rescaled by
    # d_model^-0.5 before the head).
    "t5-v1_0-tiny": ("t5", dict(T5_TINY, feed_forward_proj="relu", tie_word_embeddings=True), 13),
}


def gpt2_tokenizer():
    return GPT2TokenizerFast(tokenizer_file=str(TOKENIZERS / "gpt2" / "tokenizer.json"))


def t5_tokenizer():
    return PreTrainedTokenizerFast(
        tokenizer_file=str(TOKENIZERS / "t5" / "tokenizer.json"),
        eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
    )


def build(name):
    arch, kwargs, seed = MODELS[name]
    torch.manual_seed(seed)
    if arch == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(**kwargs))
        tokenizer, prompts = gpt2_tokenizer(), GPT2_PROMPTS
    else:
        model = T5ForConditionalGeneration(T5Config(**kwargs))
        tokenizer, prompts = t5_tokenizer(), T5_PROMPTS
    model.eval()
    return arch, kwargs, seed, model, tokenizer, prompts


@torch.no_grad()
def greedy(model, arch, prompt_ids):
    """Raw next-token logits at every step of the greedy argmax loop, and the tokens."""
    input_ids = torch.tensor([prompt_ids])
    if arch == "gpt2":
        out = model(input_ids=input_ids, use_cache=True)
    else:
        encoder_outputs = model.get_encoder()(input_ids=input_ids)
        start = torch.tensor([[model.config.decoder_start_token_id]])
        out = model(encoder_outputs=encoder_outputs, decoder_input_ids=start, use_cache=True)
    tokens, step_logits = [], []
    for step in range(MAX_NEW_TOKENS):
        logits = out.logits[0, -1].float()
        step_logits.append(logits.clone())
        token = int(torch.argmax(logits))
        tokens.append(token)
        if step + 1 == MAX_NEW_TOKENS:
            break
        next_ids = torch.tensor([[token]])
        if arch == "gpt2":
            out = model(input_ids=next_ids, past_key_values=out.past_key_values, use_cache=True)
        else:
            out = model(encoder_outputs=encoder_outputs, decoder_input_ids=next_ids,
                        past_key_values=out.past_key_values, use_cache=True)
    return tokens, step_logits


def write(name, out_root):
    arch, kwargs, seed, model, tokenizer, prompts = build(name)
    out = out_root / name
    if out.exists():
        shutil.rmtree(out)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    cases, step0 = [], {}
    for i, prompt in enumerate(prompts):
        prompt_ids = tokenizer(prompt)["input_ids"]
        tokens, logits = greedy(model, arch, prompt_ids)
        margins = [float(v[0] - v[1]) for v in (torch.topk(l, 2).values for l in logits)]
        top5 = torch.topk(logits[0], 5)
        step0[f"prompt{i}"] = logits[0].contiguous()
        cases.append({
            "prompt": prompt,
            "prompt_ids": prompt_ids,
            "greedy_ids": tokens,
            "greedy_text": tokenizer.decode(tokens, skip_special_tokens=True),
            "step_margins": margins,
            "step0_top5": [[int(t), float(v)] for t, v in zip(top5.indices, top5.values)],
        })
    save_file(step0, str(out / "reference_step0_logits.safetensors"))
    golden = {
        "generated_with": {"torch": torch.__version__, "transformers": transformers.__version__},
        "max_new_tokens": MAX_NEW_TOKENS,
        "model": {"dir": name, "arch": arch, "config": kwargs, "seed": seed, "cases": cases},
    }
    (out / "golden.json").write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n")
    low = [(c["prompt"], min(c["step_margins"])) for c in cases]
    print(f"{out}: {len(cases)} cases; smallest margin per case: {low}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", choices=sorted(MODELS))
    parser.add_argument("--out", type=Path, default=REPO / "tests" / "fixtures")
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    for name in args.models:
        write(name, args.out)


if __name__ == "__main__":
    main()
