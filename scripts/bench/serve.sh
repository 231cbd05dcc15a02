#!/usr/bin/env bash
# Serving benchmark: the agent over HTTP (release build) under scripts/bench/serve_load.py
# on the GPT-2-small-shaped checkpoint, next to transformers' batched generate and
# CTranslate2 Python's generate_batch on the same prompts, in the same run.
#
#   scripts/bench/serve.sh            # everything below
#   RSS_REQUESTS=0 scripts/bench/serve.sh   # skip the 10,000-request memory run
#
# PYTHON: an interpreter with scripts/reference/requirements.txt and ctranslate2 installed.
# MODEL: the checkpoint (default target/bench/gpt2-small-random, made if missing).
# AGENT_BIN: an already built gpu-agent (default: cargo build --release, then that one).
# Output: JSON lines (one per measurement); docs/benchmarks.md records them.
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${PYTHON:-python3}
model=${MODEL:-target/bench/gpt2-small-random}
rss_requests=${RSS_REQUESTS:-10000}
mkdir -p "$(dirname "$model")"
[ -f "$model/model.safetensors" ] || "$python" scripts/bench/make_checkpoint.py --out "$model"
model=$(realpath "$model")

if [ -z "${AGENT_BIN:-}" ]; then
    cargo build --release -p gpu-agent
    AGENT_BIN=target/release/gpu-agent
fi
work=$(mktemp -d)
port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
url="http://127.0.0.1:$port"
key=bench-key
cat >"$work/agent.toml" <<EOF
listen = "127.0.0.1:$port"
state_dir = "$work/state"
allow_cpu = true
model_roots = ["$(dirname "$model")"]
[auth]
api_keys = ["$key"]
[models."candle-b16"]
source = "$model"
[models."candle-b1"]
source = "$model"
[models."ct2-b16"]
source = "$model"
EOF
GPU_AGENT_LOG=warn "$AGENT_BIN" serve --config "$work/agent.toml" >"$work/agent.log" 2>&1 &
agent=$!
trap 'kill $agent 2>/dev/null; wait $agent 2>/dev/null; rm -rf "$work"' EXIT
until curl -sf "$url/healthz" >/dev/null; do sleep 0.2; done

deploy() { # model-id max-batch-size optimization-info-json
    curl -s --fail-with-body -X POST "$url/v1/deployments" -H "x-api-key: $key" \
        -H 'content-type: application/json' -d "{
        \"modelId\": \"$1\", \"name\": \"bench\", \"deviceType\": \"cpu\",
        \"hyperParameters\": {\"temperature\": 0, \"maxTokens\": 64, \"topP\": 1, \"topK\": 50},
        \"scalingParameters\": {\"maxBatchSize\": $2, \"minReplicas\": 1, \"maxReplicas\": 1}
        $3 }" >/dev/null
    until curl -sf -H "x-api-key: $key" "$url/v1/deployments/$1" | grep -q '"phase":"READY"'; do
        if curl -sf -H "x-api-key: $key" "$url/v1/deployments/$1" | grep -q '"phase":"FAILED"'; then
            curl -s -H "x-api-key: $key" "$url/v1/deployments/$1"; exit 1
        fi
        sleep 0.5
    done
}
load() { # label deployment clients requests-per-client max-tokens
    "$python" scripts/bench/serve_load.py --url "$url" --api-key "$key" --label "$1" \
        --deployment "$2" --clients "$3" --requests-per-client "$4" --max-tokens "$5"
}

deploy candle-b16 16 ""
deploy candle-b1 1 ""
deploy ct2-b16 16 ', "optimizationInfo": {"optimizationType": "ctranslate2", "quantizationType": "int8_float16"}'
curl -s -H "x-api-key: $key" "$url/v1/deployments/ct2-b16" | "$python" -c 'import json,sys; print(json.dumps({"ct2_backend": json.load(sys.stdin).get("backend")}))'

load warm-up candle-b16 4 1 8 >/dev/null
load warm-up ct2-b16 4 1 8 >/dev/null
load warm-up candle-b1 1 1 8 >/dev/null
load "candle idle (1 client x 16 requests)" candle-b16 1 16 64
load "candle maxBatchSize 16 (16 streams x 64 tokens, x3)" candle-b16 16 3 64
load "candle maxBatchSize 1 (16 streams x 64 tokens)" candle-b1 16 1 64
load "ctranslate2 idle (1 client x 16 requests)" ct2-b16 1 16 64
load "ctranslate2 maxBatchSize 16 (16 streams x 64 tokens, x3)" ct2-b16 16 3 64
"$python" scripts/bench/reference_generate.py transformers "$model"
"$python" scripts/bench/reference_generate.py ctranslate2 "$model"

if [ "$rss_requests" -gt 0 ]; then
    rss() { awk '/VmRSS/ {print $2}' "/proc/$agent/status"; }
    per_client=$((rss_requests / 16))
    load "rss warm-up (16 x 64 requests, 4 tokens)" candle-b16 16 64 4 >/dev/null
    before=$(rss)
    load "candle ${rss_requests} requests (16 clients, 4 tokens each)" candle-b16 16 "$per_client" 4
    after=$(rss)
    echo "{\"label\": \"agent RSS over $rss_requests requests\", \"rss_kib_before\": $before, \"rss_kib_after\": $after}"
fi
