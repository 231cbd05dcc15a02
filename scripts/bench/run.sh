#!/usr/bin/env bash
# Decode throughput of the runtime (candle, f32) next to Hugging Face transformers (PyTorch,
# CPU, f32) on the same GPT-2-small-shaped checkpoint, in the same run.
#
#   scripts/bench/run.sh [--prompt N] [--steps N] [--batch N] [--repeats N]
#
# PYTHON: an interpreter with scripts/reference/requirements.txt installed (default python3).
# MODEL: the checkpoint directory (default target/bench/gpt2-small-random, made if missing).
# Results are JSON lines; docs/benchmarks.md records them with the machine they ran on.
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${PYTHON:-python3}
model=${MODEL:-target/bench/gpt2-small-random}
mkdir -p "$(dirname "$model")"
model=$(realpath "$model") # cargo bench runs in runtime/

if [ ! -f "$model/model.safetensors" ]; then
    "$python" scripts/bench/make_checkpoint.py --out "$model"
fi
cargo bench -p runtime --bench decode -- "$model" "$@"
"$python" scripts/bench/hf_decode.py "$model" "$@"
