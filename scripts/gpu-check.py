#!/usr/bin/env python3
"""Checks a `cuda` build of gpu-agent on a real GPU host (no Rust toolchain needed there).

1. `gpu-agent generate --device cuda:0` on every reference prompt of the tiny fixtures, in
   float32 and in the GPU's default precision, against Hugging Face's greedy outputs
   (tests/fixtures/golden.json; compared up to the first step whose margin is < 5e-4).
2. The agent itself, with the host's real libnvidia-ml: /v1/gpus, a deploy to a device
   class describing this GPU (served on cuda:0, golden tokens over HTTP), a deploy to a
   class it is not (DEVICE_MISMATCH naming what NVML reports), /metrics GPU gauges, and the
   `gpu-agent status` probe.

Usage: scripts/gpu-check.py BINARY [OUT_DIR]   (run from the repository root)
Prints a summary and writes OUT_DIR/gpu-check.json. Standard library only.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

MARGIN_FLOOR = 5e-4
FIXTURES = os.path.join("tests", "fixtures")
KEY = "gpu-check-key"


def golden_cases(model_dir):
    if model_dir in ("gpt2-tiny", "t5-tiny"):
        with open(os.path.join(FIXTURES, "golden.json")) as f:
            golden = json.load(f)
        return golden["models"]["gpt2" if model_dir == "gpt2-tiny" else "t5"]["cases"]
    with open(os.path.join(FIXTURES, model_dir, "golden.json")) as f:
        return json.load(f)["model"]["cases"]


def comparable(case):
    for i, margin in enumerate(case["step_margins"]):
        if margin < MARGIN_FLOOR:
            return i
    return len(case["greedy_ids"])


def check_cli(binary, model_dir, precision):
    """Runs every reference prompt; returns (cases matching, cases, details)."""
    matched, details = 0, []
    for case in golden_cases(model_dir):
        args = [binary, "generate", "--model", os.path.join(FIXTURES, model_dir),
                "--prompt", case["prompt"], "--max-tokens", "24", "--json",
                "--device", "cuda:0"]
        if precision:
            args += ["--precision", precision]
        run = subprocess.run(args, capture_output=True, text=True)
        if run.returncode != 0:
            details.append({"prompt": case["prompt"], "error": run.stderr[-2000:]})
            continue
        out = json.loads(run.stdout)
        n = comparable(case)
        same = out["tokens"][:n] == case["greedy_ids"][:n]
        first_diff = next((i for i, (a, b) in enumerate(zip(out["tokens"], case["greedy_ids"]))
                           if a != b), None)
        matched += same
        details.append({"prompt": case["prompt"], "matches": same, "compared": n,
                        "firstDifferentStep": first_diff,
                        "promptIdsMatch": out["promptTokens"] == case["prompt_ids"]})
    return matched, len(details), details


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method, url, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={
        "x-api-key": KEY, "content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as reply:
            text = reply.read().decode()
            return reply.status, text
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def nvidia_class(name, memory_mib, capability):
    return (f'[[device_class]]\ndevice_type = "host.gpu"\ngpu_count = 1\n'
            f'gpu_name = "{name}"\nmemory_mib = {memory_mib}\n'
            f'compute_capability = "{capability}"\n')


def check_agent(binary, out):
    smi = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total,compute_cap",
                          "--format=csv,noheader,nounits"], capture_output=True, text=True)
    name, memory, capability = [x.strip() for x in smi.stdout.splitlines()[0].split(",")]
    work = tempfile.mkdtemp()
    with open(os.path.join("configs", "device-classes.toml")) as f:
        catalog = f.read() + "\n" + nvidia_class(name, memory, capability)
    catalog_path = os.path.join(work, "device-classes.toml")
    with open(catalog_path, "w") as f:
        f.write(catalog)
    port = free_port()
    config = os.path.join(work, "agent.toml")
    with open(config, "w") as f:
        f.write(f'listen = "127.0.0.1:{port}"\nstate_dir = "{work}/state"\n'
                f'model_roots = ["{os.path.abspath(FIXTURES)}"]\n'
                f'[auth]\napi_keys = ["{KEY}"]\n'
                f'[gpu]\ndevice_classes = "{catalog_path}"\n'
                f'[models."gpt2-tiny"]\nsource = "gpt2-tiny"\n'
                f'[models."t5-tiny"]\nsource = "t5-tiny"\n')
    log = open(os.path.join(out, "agent.log"), "w")
    agent = subprocess.Popen([binary, "serve", "--config", config], stdout=log, stderr=log,
                             env={**os.environ, "CUDA_DEVICE_ORDER": "PCI_BUS_ID"})
    base = f"http://127.0.0.1:{port}"
    result = {"nvidiaSmi": smi.stdout.strip()}
    try:
        for _ in range(100):
            try:
                if http("GET", base + "/healthz")[0] == 200:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        result["gpus"] = json.loads(http("GET", base + "/v1/gpus")[1])

        def deploy(model, device_type, optimization=""):
            body = {"name": model, "deviceType": device_type,
                    "hyperParameters": {"temperature": 0, "maxTokens": 24, "topP": 1, "topK": 50},
                    "scalingParameters": {"maxBatchSize": 16, "minReplicas": 1, "maxReplicas": 1,
                                          "scaleUpDelay": 100, "scaleDownDelay": 500},
                    "optimizationInfo": {"optimizationType": optimization, "quantizationType": ""}}
            status, text = http("POST", f"{base}/api/public/models/{model}/deploy?modelType=openSource", body)
            job = json.loads(text).get("dockStatusId")
            for _ in range(600):
                status, text = http("GET", f"{base}/api/public/dock-status/{job}")
                state = json.loads(text)
                if state.get("status") in ("SUCCESS", "FAILED"):
                    return state
                time.sleep(0.1)
            return state

        result["mismatch"] = deploy("t5-tiny", "g5.xlarge")
        served = {}
        for model, golden_dir in (("gpt2-tiny", "gpt2-tiny"), ("t5-tiny", "t5-tiny")):
            state = deploy(model, "host.gpu")
            status = json.loads(http("GET", f"{base}/v1/deployments/{model}")[1])
            matches = []
            for case in golden_cases(golden_dir):
                code, text = http("POST", f"{base}/v1/deployments/{model}/generate",
                                  {"prompt": case["prompt"],
                                   "parameters": {"temperature": 0, "maxTokens": 24}})
                tokens = json.loads(text).get("tokens", []) if code == 200 else []
                n = comparable(case)
                matches.append({"prompt": case["prompt"], "status": code,
                                "matches": tokens[:n] == case["greedy_ids"][:n],
                                "firstDifferentStep": next(
                                    (i for i, (a, b) in enumerate(zip(tokens, case["greedy_ids"]))
                                     if a != b), None)})
            served[model] = {"deploy": state, "backend": status.get("backend"),
                             "replicas": status.get("replicas"),
                             "gpuIndices": status.get("gpuIndices"), "generate": matches}
        result["served"] = served
        metrics = http("GET", base + "/metrics")[1]
        result["gpuGauges"] = [line for line in metrics.splitlines()
                               if line.startswith("gpu_agent_gpu_memory")]
        probe = subprocess.run([binary, "status", "--url", base, "--api-key", KEY],
                               capture_output=True, text=True)
        result["probe"] = {"exit": probe.returncode, "line": probe.stdout.strip()}
    finally:
        agent.send_signal(signal.SIGTERM)
        result["exitAfterSigterm"] = agent.wait(timeout=60)
    return result


def main():
    binary = os.path.abspath(sys.argv[1])
    out = sys.argv[2] if len(sys.argv) > 2 else "."
    report = {"cli": {}}
    for model in ("gpt2-tiny", "t5-tiny", "t5-v1_0-tiny"):
        for precision in ("float32", None):
            matched, total, details = check_cli(binary, model, precision)
            label = precision or "default"
            report["cli"][f"{model}/{label}"] = {"matched": matched, "cases": total,
                                                 "details": details}
            print(f"generate --device cuda:0 {model} {label}: {matched}/{total} golden")
    report["agent"] = check_agent(binary, out)
    with open(os.path.join(out, "gpu-check.json"), "w") as f:
        json.dump(report, f, indent=2)
    agent = report["agent"]
    print("mismatch:", agent["mismatch"].get("error"))
    for model, s in agent["served"].items():
        ok = sum(m["matches"] for m in s["generate"])
        print(f"served {model}: {s['deploy'].get('status')} on {s['replicas']} "
              f"backend {s['backend']}: {ok}/{len(s['generate'])} golden over HTTP")
    print("probe:", agent["probe"], "exit after SIGTERM:", agent["exitAfterSigterm"])


if __name__ == "__main__":
    main()
