#!/usr/bin/env bash
# llama.cpp server as a reference peer, built from source: the llama.cpp tree that the
# pinned llama-cpp-python sdist vendors (PyPI only; no GitHub access needed).
#
#   scripts/bench/llama_cpp.sh build        # sdist -> target/bench/llama.cpp/build/bin/llama-server
#   scripts/bench/llama_cpp.sh gguf MODEL   # MODEL.f32.gguf and MODEL.q8_0.gguf beside MODEL
#
# Pins: LLAMA_CPP_PYTHON (sdist version); the converter's Python packages are in
# scripts/bench/requirements-llama-cpp.txt (installed into PYTHON's environment).
# JOBS: parallel compile jobs (default 2).
set -euo pipefail
cd "$(dirname "$0")/../.."
pin=${LLAMA_CPP_PYTHON:-0.3.36}
python=${PYTHON:-python3}
jobs=${JOBS:-2}
root=target/bench/llama.cpp
src=$root/llama_cpp_python-$pin/vendor/llama.cpp
build=$root/build

fetch() {
    mkdir -p "$root"
    if [ ! -d "$src" ]; then
        "$python" -m pip download --quiet --no-binary :all: --no-deps \
            "llama-cpp-python==$pin" -d "$root"
        tar -xzf "$root/llama_cpp_python-$pin.tar.gz" -C "$root"
    fi
}

case "${1:-}" in
build)
    fetch
    # Release, tuned for this CPU (GGML_NATIVE), no libcurl (models are local files);
    # only the server target is built.
    cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
        -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
        -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TOOLS=ON -DBUILD_SHARED_LIBS=OFF
    time cmake --build "$build" --target llama-server -j "$jobs"
    "$build/bin/llama-server" --version
    ;;
gguf)
    fetch
    model=$(realpath "${2:?usage: $0 gguf MODEL_DIR}")
    # The converter imports the vendored gguf-py, which matches this llama.cpp tree.
    for type in f32 q8_0; do
        out="$model.$type.gguf"
        [ -f "$out" ] && continue
        PYTHONPATH="$src/gguf-py" "$python" "$src/convert_hf_to_gguf.py" "$model" \
            --outtype "$type" --outfile "$out"
    done
    ;;
*)
    echo "usage: $0 build | gguf MODEL_DIR" >&2
    exit 2
    ;;
esac
