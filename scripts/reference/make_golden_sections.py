#!/usr/bin/env python3
"""The sections of tests/fixtures/golden.json that make_fixtures.py does not write.

  tokenization [--texts FILE]
      `gpt2_tokenization` / `t5_tokenization`: each text (TEXTS below, or a JSON list of
      strings) with the ids of the GPT-2 and T5 tokenizers in tests/fixtures/tokenizers/,
      loaded as make_fixtures.py does (T5's ids end with </s>=1, as T5TokenizerFast's do);
      to --out FILE, or to stdout.
  ctranslate2 --out OUT CHECKPOINT...
      converts each transformers checkpoint directory with CTranslate2's own converter
      (TransformersConverter, as ct2-transformers-converter does) and writes, under OUT/:
      <name>/ct2-float32/, <name>/ct2-int8_float16/   the converted models;
      ct2-reference/<name>.<quantization>.txt        their manifests (the format of
                                                      tests/fixtures/ct2-reference/);
      <name>/ctranslate2.json                         the model's `ctranslate2` section:
          greedy output of Generator.generate_batch (GPT-2: tokens and ids, prompt not
          included) or Translator.translate_batch (T5: tokens only, TranslationResult has
          no ids) on CPU, beam_size 1, 24 new tokens, for make_fixtures.py's prompts;
          int8_float16 runs as int8_float32 (CTranslate2 refuses float16 compute on CPU),
          with MKL's int8 GEMM even on AMD CPUs (CT2_USE_MKL, see below).
  scoring --golden FILE CHECKPOINT...
      per model (the golden model whose "dir" is the checkpoint's directory name), a
      `scoring` section with, for every case: `prompt_logprobs` (GPT-2 only: each prompt
      token's log-softmax from transformers' logits at the position before it, the first
      null) and `prompt_logprob_sum`; `greedy_logprobs`, each greedy token's log-softmax
      given the prompt and the greedy tokens before it (teacher forcing; T5: through the
      decoder); and `ctranslate2_greedy_logprobs`, the per-step `log_prob` that
      CTranslate2's generate_tokens reports (return_log_prob, greedy, float32 conversion).

With --golden FILE either command also writes its section(s) into that combined golden
file in place (the ctranslate2 section into the model whose "dir" is the checkpoint's
directory name, and generated_with.ctranslate2), keeping everything else byte-identical.

Usage (from the repository root, in a venv with requirements.txt installed):
  python scripts/reference/make_golden_sections.py tokenization --out /tmp/tok.json
  python scripts/reference/make_golden_sections.py ctranslate2 --out /tmp/ct2 \\
      tests/fixtures/gpt2-tiny tests/fixtures/t5-tiny
  # regenerate in place, then review with git diff:
  python scripts/reference/make_golden_sections.py tokenization --golden tests/fixtures/golden.json
  python scripts/reference/make_golden_sections.py ctranslate2 --out /tmp/ct2 \\
      --golden tests/fixtures/golden.json tests/fixtures/gpt2-tiny tests/fixtures/t5-tiny
  cp /tmp/ct2/ct2-reference/*.txt tests/fixtures/ct2-reference/
"""

import argparse
import hashlib
import json
import os
import shutil
import struct
from pathlib import Path

# The committed int8 outputs come from MKL's int8 GEMM, CTranslate2's default on Intel CPUs.
# On other x86 CPUs (AMD) the wheel defaults to oneDNN, whose u8s8 int8 GEMM gives other
# greedy tokens from step 0 on these tiny random models; float32 agrees either way. Must be
# set before CTranslate2 picks its backend; export CT2_USE_MKL=0 to see the oneDNN outputs.
os.environ.setdefault("CT2_USE_MKL", "1")

import ctranslate2  # noqa: E402
import torch  # noqa: E402
from ctranslate2.converters import TransformersConverter  # noqa: E402
from transformers import GPT2LMHeadModel, T5ForConditionalGeneration  # noqa: E402

from make_fixtures import (  # noqa: E402
    GPT2_PROMPTS, MAX_NEW_TOKENS, T5_PROMPTS, gpt2_tokenizer, t5_tokenizer,
)

# The texts of the committed golden.json: whitespace runs, accents, emoji (byte fallback),
# code, digits, a special token, CJK (unknown to T5), contractions, a URL.
TEXTS = [
    "Hello world",
    "  two  spaces\tand\ttabs\n\nnewlines",
    "naïve café Zürich",
    "emoji 😀🚀 test",
    'fn main() { println!("hi"); }',
    "1234567890 3.14159",
    "<|endoftext|>",
    "日本語のテキスト",
    "don't won't it's",
    "URL https://example.com/a?b=c&d=e",
]

# quantization -> compute type CTranslate2 runs it with on CPU.
QUANTIZATIONS = {"float32": "float32", "int8_float16": "int8_float32"}

# model.bin dtype ids, in the order of CTranslate2's DataType enum (include/ctranslate2/types.h).
DTYPES = ["float32", "int8", "int16", "int32", "float16", "bfloat16"]


def tokenization(texts):
    gpt2, t5 = gpt2_tokenizer(), t5_tokenizer()
    return {
        "gpt2_tokenization": [{"text": t, "ids": gpt2(t)["input_ids"]} for t in texts],
        "t5_tokenization": [{"text": t, "ids": t5(t)["input_ids"]} for t in texts],
    }


def greedy_cases(model_dir, arch, compute_type):
    # make_fixtures.py's prompts and tokenizers, so case i lines up with its `cases[i]`.
    if arch == "gpt2":
        tokenizer, prompts = gpt2_tokenizer(), GPT2_PROMPTS
    else:
        tokenizer, prompts = t5_tokenizer(), T5_PROMPTS
    batch = [tokenizer.convert_ids_to_tokens(tokenizer(p)["input_ids"]) for p in prompts]
    if arch == "gpt2":
        generator = ctranslate2.Generator(str(model_dir), device="cpu", compute_type=compute_type)
        results = generator.generate_batch(batch, max_length=MAX_NEW_TOKENS, beam_size=1,
                                           include_prompt_in_result=False)
        return [{"greedy_tokens": r.sequences[0], "greedy_ids": r.sequences_ids[0]}
                for r in results]
    # The source tokens keep T5's trailing </s>: the converted config has add_source_eos false.
    translator = ctranslate2.Translator(str(model_dir), device="cpu", compute_type=compute_type)
    results = translator.translate_batch(batch, max_decoding_length=MAX_NEW_TOKENS, beam_size=1)
    return [{"greedy_tokens": r.hypotheses[0]} for r in results]


def manifest(model_dir):
    """Lines of tests/fixtures/ct2-reference/*.txt: `file NAME SHA256` per file, `spec NAME
    REVISION VERSION`, `variable NAME [SHAPE] DTYPE SHA256(DATA)`, `alias NAME TARGET`
    (the same as runtime/tests/ct2/common.rs's manifest_of, so a mismatch names the variable)."""
    def sha(b):
        return hashlib.sha256(b).hexdigest()

    lines = [f"file {p.name} {sha(p.read_bytes())}" for p in sorted(model_dir.iterdir())]
    data = (model_dir / "model.bin").read_bytes()
    pos = 0

    def take(fmt):
        nonlocal pos
        values = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return values[0] if len(values) == 1 else values

    def string():  # uint16 length (with the NUL), bytes, NUL
        nonlocal pos
        n = take("H")
        pos += n
        return data[pos - n:pos - 1].decode("utf-8")

    version, spec, revision = take("I"), string(), take("I")
    lines.append(f"spec {spec} {revision} {version}")
    for _ in range(take("I")):
        name = string()
        shape = [take("I") for _ in range(take("B"))]
        dtype, size = take("B"), take("I")
        pos += size
        lines.append(f"variable {name} [{','.join(map(str, shape))}] {DTYPES[dtype]} "
                     f"{sha(data[pos - size:pos])}")
    for _ in range(take("I")):
        lines.append(f"alias {string()} {string()}")
    return lines


def convert(checkpoint, out):
    arch = json.loads((checkpoint / "config.json").read_text())["model_type"]
    section = {}
    for quantization, compute_type in QUANTIZATIONS.items():
        model_dir = out / checkpoint.name / f"ct2-{quantization}"
        if model_dir.exists():
            shutil.rmtree(model_dir)
        TransformersConverter(str(checkpoint)).convert(str(model_dir), quantization=quantization)
        reference = out / "ct2-reference" / f"{checkpoint.name}.{quantization}.txt"
        reference.parent.mkdir(parents=True, exist_ok=True)
        reference.write_text("\n".join(manifest(model_dir)) + "\n")
        section[quantization] = {
            "dir": model_dir.name,
            "compute_type_on_cpu": compute_type,
            "cases": greedy_cases(model_dir, arch, compute_type),
        }
    dump(out / checkpoint.name / "ctranslate2.json", {"ctranslate2": section})
    print(f"{out / checkpoint.name}: converted and ran {', '.join(QUANTIZATIONS)}")
    return section


@torch.no_grad()
def scoring(checkpoint, cases, work):
    """The `scoring` section of one model (see the module docstring)."""
    arch = json.loads((checkpoint / "config.json").read_text())["model_type"]
    if arch == "gpt2":
        model = GPT2LMHeadModel.from_pretrained(str(checkpoint)).eval()
    else:
        model = T5ForConditionalGeneration.from_pretrained(str(checkpoint)).eval()
    model_dir = work / f"{checkpoint.name}-ct2-float32"
    if model_dir.exists():
        shutil.rmtree(model_dir)
    TransformersConverter(str(checkpoint)).convert(str(model_dir), quantization="float32")
    if arch == "gpt2":
        ct2 = ctranslate2.Generator(str(model_dir), device="cpu", compute_type="float32")
        tokenizer = gpt2_tokenizer()
    else:
        ct2 = ctranslate2.Translator(str(model_dir), device="cpu", compute_type="float32")
        tokenizer = t5_tokenizer()
    section = []
    for case in cases:
        prompt, greedy = case["prompt_ids"], case["greedy_ids"]
        entry = {}
        if arch == "gpt2":
            ids = torch.tensor([prompt + greedy])
            logprobs = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
            scored = [None] + [float(logprobs[i - 1, t]) for i, t in enumerate(prompt) if i > 0]
            entry["prompt_logprobs"] = scored
            entry["prompt_logprob_sum"] = sum(x for x in scored if x is not None)
            n = len(prompt)
            entry["greedy_logprobs"] = [float(logprobs[n - 1 + i, t]) for i, t in enumerate(greedy)]
        else:
            decoder = [model.config.decoder_start_token_id] + greedy[:-1]
            logits = model(input_ids=torch.tensor([prompt]),
                           decoder_input_ids=torch.tensor([decoder])).logits[0]
            logprobs = torch.log_softmax(logits.double(), dim=-1)
            entry["greedy_logprobs"] = [float(logprobs[i, t]) for i, t in enumerate(greedy)]
        tokens = tokenizer.convert_ids_to_tokens(prompt)
        if arch == "gpt2":
            steps = ct2.generate_tokens(tokens, max_length=len(greedy), sampling_topk=1,
                                        return_log_prob=True)
        else:
            steps = ct2.generate_tokens(tokens, max_decoding_length=len(greedy),
                                        sampling_topk=1, return_log_prob=True)
        entry["ctranslate2_greedy_ids"] = []
        entry["ctranslate2_greedy_logprobs"] = []
        for step in steps:
            entry["ctranslate2_greedy_ids"].append(step.token_id)
            entry["ctranslate2_greedy_logprobs"].append(step.log_prob)
        section.append(entry)
    return section


def dump(path, value):
    # indent 1, raw UTF-8, no final newline: how the committed golden.json is written, so
    # rewriting it changes only the regenerated values.
    path.write_text(json.dumps(value, indent=1, ensure_ascii=False), encoding="utf-8")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    tok = sub.add_parser("tokenization", help="gpt2_tokenization / t5_tokenization")
    tok.add_argument("--texts", type=Path, help="JSON list of texts (default: TEXTS)")
    tok.add_argument("--out", type=Path, help="write the two sections to this JSON file")
    ct2 = sub.add_parser("ctranslate2", help="CTranslate2 conversions and greedy outputs")
    ct2.add_argument("checkpoints", nargs="+", type=Path)
    ct2.add_argument("--out", type=Path, required=True)
    score = sub.add_parser("scoring", help="reference logprobs of prompts and greedy tokens")
    score.add_argument("checkpoints", nargs="+", type=Path)
    score.add_argument("--work", type=Path, default=Path("/tmp/scoring-ct2"),
                       help="where the float32 CTranslate2 conversions are written")
    for p in (tok, ct2):
        p.add_argument("--golden", type=Path, help="combined golden.json to update in place")
    score.add_argument("--golden", type=Path, required=True,
                       help="combined golden.json to update in place")
    args = parser.parse_args()

    golden = json.loads(args.golden.read_text(encoding="utf-8")) if args.golden else None
    if args.command == "tokenization":
        texts = json.loads(args.texts.read_text(encoding="utf-8")) if args.texts else TEXTS
        sections = tokenization(texts)
        if args.out:
            dump(args.out, sections)
        elif golden is None:
            print(json.dumps(sections, indent=1, ensure_ascii=False))
        if golden is not None:
            golden.update(sections)
    elif args.command == "scoring":
        for checkpoint in args.checkpoints:
            models = [m for m in golden["models"].values() if m["dir"] == checkpoint.name]
            if not models:
                parser.error(f"no model with dir {checkpoint.name!r} in {args.golden}")
            models[0]["scoring"] = scoring(checkpoint, models[0]["cases"], args.work)
            golden["generated_with"]["ctranslate2"] = ctranslate2.__version__
    else:
        for checkpoint in args.checkpoints:
            if golden is None:
                convert(checkpoint, args.out)
                continue
            models = [m for m in golden["models"].values() if m["dir"] == checkpoint.name]
            if not models:
                parser.error(f"no model with dir {checkpoint.name!r} in {args.golden}")
            models[0]["ctranslate2"] = convert(checkpoint, args.out)
            golden["generated_with"]["ctranslate2"] = ctranslate2.__version__
    if golden is not None:
        dump(args.golden, golden)
        print(f"updated {args.golden}")


if __name__ == "__main__":
    main()
