"""What the server backend's client costs: the throughput workload through ``vllm serve`` (hf-synth's
``server`` backend, chat completions over HTTP) against the same model in-process (hf-synth's ``vllm``
backend), in one run, on this machine. Run it with the vLLM environment's Python (``make bench-server``):

    .venv-vllm/bin/python bench/bench_server.py [--prompts 128 --max-new-tokens 256 --concurrency 64]

Both sides decode greedily (``temperature=0``: the same tokens, so tok/s compare like with like; vLLM's
CPU build refuses per-request seeds, which hf-synth sends only when sampling) from the workload of
``bench/bench_throughput.py`` (the default model's chat prompts, 128 mixed Self-Instruct/Evol prompts).
The server side counts from the first request to the last answer, with the server already up and warmed;
the in-process side counts ``LLM.generate`` alone. Prints the CPU, both tok/s and the client's overhead
(1 - server/in-process), and writes ``bench/results/server.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model_dir: str, served: str, port: int, slots: int, log: Path) -> subprocess.Popen:
    """``vllm serve`` on the loopback interface; returns once it lists its model (or raises with its log)."""
    command = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        model_dir,
        "--served-model-name",
        served,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        "float32",
        "--max-num-seqs",
        str(slots),
        "--max-model-len",
        "2048",
        "--seed",
        "0",
    ]
    handle = log.open("w")
    proc = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ})
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"vllm serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as reply:
                if served in reply.read().decode():
                    return proc
        except OSError:
            time.sleep(2)
    proc.terminate()
    raise SystemExit(f"vllm serve did not come up in 600 s:\n{log.read_text()[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=128)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--out", default=str(HERE / "results" / "server.json"))
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from workload import build_workload

    from hf_synth.engine import (
        DEFAULT_MODEL_ID,
        EngineConfig,
        SamplingParams,
        default_model_path,
        load_engine,
    )
    from hf_synth.engine.cpu.info import cpu_info

    cpu = cpu_info().to_dict()
    print(f"CPU: {cpu.get('model')}, ISA {cpu.get('used_isa', cpu)}", flush=True)
    prompts = [w["prompt"] for w in build_workload(args.prompts)]
    sampling = SamplingParams(max_new_tokens=args.max_new_tokens, temperature=0)
    model_dir = str(default_model_path())
    port = free_port()
    log = Path(args.out).with_suffix(".server.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    server = start_server(model_dir, DEFAULT_MODEL_ID, port, args.concurrency, log)
    try:
        engine = load_engine(
            EngineConfig(
                base_url=f"http://127.0.0.1:{port}", model=DEFAULT_MODEL_ID, concurrency=args.concurrency
            )
        )
        engine.generate(prompts[:4], SamplingParams(max_new_tokens=8, temperature=0), progress=False)  # warm
        started = time.perf_counter()
        served = engine.generate(prompts, sampling, progress=False)
        served_seconds = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=120)
    served_tokens = sum(o.completion_tokens for o in served)
    local = load_engine(EngineConfig(backend="vllm", dtype="float32", batch_size=args.concurrency))
    local.generate(prompts[:4], SamplingParams(max_new_tokens=8, temperature=0), progress=False)  # warm
    started = time.perf_counter()
    inproc = local.generate(prompts, sampling, progress=False)
    local_seconds = time.perf_counter() - started
    local_tokens = sum(o.completion_tokens for o in inproc)
    same = sum(a.text == b.text for a, b in zip(served, inproc, strict=True))
    result = {
        "cpu": cpu,
        "prompts": len(prompts),
        "max_new_tokens": args.max_new_tokens,
        "concurrency": args.concurrency,
        "server": {
            "tokens": served_tokens,
            "seconds": round(served_seconds, 2),
            "tok_s": round(served_tokens / served_seconds, 1),
        },
        "in_process": {
            "tokens": local_tokens,
            "seconds": round(local_seconds, 2),
            "tok_s": round(local_tokens / local_seconds, 1),
        },
        "same_texts": same,
    }
    result["client_overhead"] = round(1 - result["server"]["tok_s"] / result["in_process"]["tok_s"], 3)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(
        f"\n| path | tokens | seconds | tok/s |\n|---|---|---|---|\n"
        f"| vllm serve + hf-synth server backend | {served_tokens} | {served_seconds:.1f} | {result['server']['tok_s']} |\n"
        f"| in-process vLLM (hf-synth vllm backend) | {local_tokens} | {local_seconds:.1f} | {result['in_process']['tok_s']} |\n"
        f"\nclient overhead {result['client_overhead']:.1%}; identical greedy texts {same}/{len(prompts)}"
    )


if __name__ == "__main__":
    main()
