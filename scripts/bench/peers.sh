#!/usr/bin/env bash
# The agent against the peers users compare it with, one system at a time on the same
# checkpoint and prompts: each agent deployment (over its OpenAI /v1/completions route),
# llama-server with f32 and q8_0 GGUF files, then CTranslate2 Python and transformers
# (in-process, no server: single points). Every system gets the same sweep.py run (first
# burst after it turns ready, closed-loop concurrency sweep, Poisson load sweep); the JSON
# lines go to RESULTS, then plot.py draws docs/bench/*.png from them.
#
#   scripts/bench/peers.sh                          # the full run
#   SWEEP_ARGS="--requests-per-client 1 --poisson-requests 8 --max-tokens 16" \
#       REF_ARGS="--max-tokens 16 --repeats 1" scripts/bench/peers.sh   # a quick check
#
# PYTHON: an interpreter with scripts/bench/requirements-plot.txt (the load generator
#   itself needs only the standard library).
# REF_PYTHON: one with scripts/reference/requirements.txt, ctranslate2 and
#   scripts/bench/requirements-llama-cpp.txt (transformers, CTranslate2, GGUF conversion).
# MODEL: the checkpoint (default target/bench/gpt2-small-random, made if missing).
# AGENT_BIN: a built gpu-agent (default: cargo build --release, then that one).
# AGENT_DEPLOYMENTS: `;`-separated `name=optimizationType:quantizationType` (default: candle
#   f32 and CTranslate2 int8; add e.g. "agent candle int8=:int8_float16").
# LLAMA_SERVER: a built llama-server (default: scripts/bench/llama_cpp.sh build's).
# LLAMA_TYPES: GGUF types to serve (default "f32 q8_0"); "" skips llama.cpp.
# REFERENCES: in-process references to run (default "ctranslate2 transformers").
# THREADS: CPU threads for llama-server (default: all cores).
# RESULTS: the JSON-lines file (default target/bench/peers-<UTC time>.jsonl).
# PLOTS: where the PNGs go (default docs/bench); "" skips the plots.
set -euo pipefail
cd "$(dirname "$0")/../.."
python=${PYTHON:-python3}
ref_python=${REF_PYTHON:-$python}
model=${MODEL:-target/bench/gpt2-small-random}
deployments=${AGENT_DEPLOYMENTS:-agent candle f32=:;agent CTranslate2 int8=ctranslate2:int8_float16}
llama_server=${LLAMA_SERVER:-target/bench/llama.cpp/build/bin/llama-server}
llama_types=${LLAMA_TYPES-f32 q8_0}
references=${REFERENCES-ctranslate2 transformers}
threads=${THREADS:-$(nproc)}
results=${RESULTS:-target/bench/peers-$(date -u +%Y%m%dT%H%M%SZ).jsonl}
plots=${PLOTS-docs/bench}
read -r -a sweep_args <<<"${SWEEP_ARGS:-}"
read -r -a ref_args <<<"${REF_ARGS:-}"

mkdir -p "$(dirname "$model")" "$(dirname "$results")"
[ -f "$model/model.safetensors" ] || "$ref_python" scripts/bench/make_checkpoint.py --out "$model"
model=$(realpath "$model")
if [ -z "${AGENT_BIN:-}" ]; then
    cargo build --release -p gpu-agent
    AGENT_BIN=target/release/gpu-agent
fi
free_port() { "$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sweep() { # system-name url deployment api-key
    "$python" scripts/bench/sweep.py --system "$1" --api openai --url "$2" --deployment "$3" \
        --api-key "$4" --first-burst "${sweep_args[@]}" | tee -a "$results"
}
work=$(mktemp -d)
server=
stop_server() {
    if [ -n "$server" ]; then kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; fi
    server=
}
trap 'stop_server; rm -rf "$work"' EXIT
echo "{\"run\": \"peers\", \"started\": \"$(date -u +%FT%TZ)\", \"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | xargs)\", \"cores\": $(nproc)}" | tee -a "$results"

# The agent: one process, one deployment at a time (deployed, swept, deleted), so each
# first burst meets a deployment that has just turned READY and nothing else runs.
port=$(free_port)
url="http://127.0.0.1:$port"
key=bench-key
cat >"$work/agent.toml" <<TOML
listen = "127.0.0.1:$port"
state_dir = "$work/state"
allow_cpu = true
model_roots = ["$(dirname "$model")"]
[auth]
api_keys = ["$key"]
TOML
IFS=';' read -r -a specs <<<"$deployments"
index=0
for spec in "${specs[@]}"; do
    name=${spec%%=*} kinds=${spec#*=}
    [ -n "$name" ] || continue
    optimization=${kinds%%:*} quantization=${kinds#*:}
    index=$((index + 1))
    id="peer-$index"
    printf '[models."%s"]\nsource = "%s"\n' "$id" "$model" >>"$work/agent.toml"
    ids[index]=$id names[index]=$name
    info[index]=", \"optimizationInfo\": {\"optimizationType\": \"$optimization\", \"quantizationType\": \"$quantization\"}"
    [ -n "$optimization$quantization" ] || info[index]=""
done
if [ "$index" -gt 0 ]; then
    GPU_AGENT_LOG=warn "$AGENT_BIN" serve --config "$work/agent.toml" >"$work/agent.log" 2>&1 &
    server=$!
    until curl -sf "$url/healthz" >/dev/null; do sleep 0.2; done
    for i in $(seq 1 "$index"); do
        id=${ids[i]}
        curl -s --fail-with-body -X POST "$url/v1/deployments" -H "x-api-key: $key" \
            -H 'content-type: application/json' -d "{
            \"modelId\": \"$id\", \"name\": \"bench\", \"deviceType\": \"cpu\",
            \"hyperParameters\": {\"temperature\": 0, \"maxTokens\": 64, \"topP\": 1, \"topK\": 50},
            \"scalingParameters\": {\"maxBatchSize\": 16, \"minReplicas\": 1, \"maxReplicas\": 1}
            ${info[i]} }" >/dev/null
        until curl -sf -H "x-api-key: $key" "$url/v1/deployments/$id" | grep -q '"phase":"READY"'; do
            if curl -sf -H "x-api-key: $key" "$url/v1/deployments/$id" | grep -q '"phase":"FAILED"'; then
                curl -s -H "x-api-key: $key" "$url/v1/deployments/$id" >&2; exit 1
            fi
            sleep 0.2
        done
        sweep "${names[i]}" "$url" "$id" "$key"
        # What the deployment ran as (backend, effective compute type), after the sweep so
        # the first burst still meets a deployment that has just turned READY.
        curl -s -H "x-api-key: $key" "$url/v1/deployments/$id" | "$python" -c '
import json, sys
status = json.load(sys.stdin)
print(json.dumps({"system": sys.argv[1], "backend": status.get("backend"), "computeType": status.get("computeType")}))' "${names[i]}" |
            tee -a "$results"
        curl -s -X DELETE -H "x-api-key: $key" "$url/v1/deployments/$id" >/dev/null
        until curl -sf -H "x-api-key: $key" "$url/v1/deployments/$id" | grep -q '"phase":"UNDEPLOYED"'; do
            sleep 0.2
        done
    done
    stop_server
fi

# llama-server: 16 slots, each with room for a prompt and its 64 tokens (the context is
# shared by the slots), every core, continuous batching (its default; named to be sure).
if [ -n "$llama_types" ]; then
    scripts/bench/llama_cpp.sh gguf "$model"
    "$llama_server" --version 2>&1 | grep -m1 version | "$python" -c 'import json,sys; print(json.dumps({"llama_server": sys.stdin.read().strip()}))' | tee -a "$results"
fi
for type in $llama_types; do
    port=$(free_port)
    "$llama_server" -m "$model.$type.gguf" --host 127.0.0.1 --port "$port" -np 16 -c 4096 \
        -t "$threads" -tb "$threads" --cont-batching >"$work/llama-$type.log" 2>&1 &
    server=$!
    until curl -sf "http://127.0.0.1:$port/health" >/dev/null; do
        kill -0 "$server" 2>/dev/null || { cat "$work/llama-$type.log" >&2; exit 1; }
        sleep 0.2
    done
    sweep "llama.cpp server $type" "http://127.0.0.1:$port" "gpt2" none
    stop_server
done

# In-process references (no server, so no sweep): batch 1 and batch 16.
for implementation in $references; do
    "$ref_python" scripts/bench/reference_generate.py "$implementation" "$model" "${ref_args[@]}" |
        tee -a "$results"
done

[ -z "$plots" ] || "$python" scripts/bench/plot.py "$results" --out "$plots"
echo "results: $results" >&2
