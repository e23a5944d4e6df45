"""Generation throughput on a real hf-synth workload: our engine vs plain batch-16 ``generate`` vs vLLM.

128 prompts (a third each: Self-Instruct instruction generation, Evol-Instruct rewriting, answering seed
instructions; see ``bench/workload.py``), max_new_tokens 256, temperature 0.7, on the embedded default
model (SmolLM2-135M-Instruct, float32). Every engine gets the same token ids and runs in its own
process, so each peak RSS is its own (model loading included). vLLM runs in a separate Python
environment when ``--vllm-python`` names one (see the README's "vLLM backend").

    python bench/bench_throughput.py [--vllm-python .venv-vllm/bin/python] [--isa avx2]

``--isa avx2`` runs every engine with torch, oneDNN, MKL and numba capped at AVX2 (an AVX-512 host then
behaves like an AVX2 one); the report says what each library really used. Prints the CPU (model,
detected and used ISA, a 2048^3 float32 matmul's GFLOP/s) and a Markdown table (tok/s, ratio to plain
batch-16 generate measured in the same run, peak RSS), and writes ``bench/results/throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _peak_rss_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def isa_environment(isa: str) -> dict:
    """The environment of every engine process: capped at AVX2 for ``--isa avx2``."""
    from hf_synth.engine.cpu.info import AVX2_ENVIRONMENT

    env = dict(os.environ)
    if isa == "avx2":
        env.update(AVX2_ENVIRONMENT)
    return env


_PROBE = """
import json, time, torch
from hf_synth.engine.cpu.info import cpu_info
a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
a @ b
runs = []
for _ in range(5):
    t = time.perf_counter(); a @ b; runs.append(time.perf_counter() - t)
torch.ops.mkldnn._linear_pointwise(torch.randn(4, 64), torch.randn(32, 64), None, "none", [], "")
print("PROBE " + json.dumps({**cpu_info().to_dict(), "matmul_2048_gflops": round(2 * 2048**3 / sorted(runs)[2] / 1e9, 1)}))
"""


def machine_report(env: dict) -> dict:
    """CPU model, detected/used ISA (torch, oneDNN as it reports itself, numba) and matmul GFLOP/s, read
    in a process with the engines' environment."""
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE], env={**env, "ONEDNN_VERBOSE": "1"}, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(f"CPU probe failed:\n{proc.stderr[-2000:]}")
    report = json.loads(next(line for line in proc.stdout.splitlines() if line.startswith("PROBE "))[6:])
    onednn = [line.split("isa:")[1] for line in proc.stdout.splitlines() if ",isa:" in line]
    report["onednn_isa"] = onednn[0] if onednn else "unknown"
    report["mkl_instructions"] = env.get("MKL_ENABLE_INSTRUCTIONS", "default (best the CPU has)")
    return report


def prepare(path: Path, n: int) -> dict:
    """Render the workload with the default model's chat template and store token ids for all workers."""
    sys.path.insert(0, str(HERE))
    from workload import build_workload

    from hf_synth import EngineConfig, GenerationEngine
    from hf_synth.engine import default_model_path

    engine = GenerationEngine.from_config(EngineConfig(backend="transformers"))
    workload = build_workload(n)
    texts = [engine.format_prompt(w["prompt"]) for w in workload]
    ids = engine.tokenizer(texts, add_special_tokens=False)["input_ids"]
    data = {
        "model_dir": str(default_model_path()),
        "kinds": [w["kind"] for w in workload],
        "prompts": [w["prompt"] for w in workload],  # what hf-synth's engine renders itself
        "texts": texts,
        "input_ids": ids,
        "eos_token_id": engine.tokenizer.eos_token_id,
        "pad_token_id": engine.tokenizer.pad_token_id,
    }
    path.write_text(json.dumps(data))
    del engine  # the workers load their own models
    return data


def run_hf_synth(data: dict, args) -> dict:
    from hf_synth import EngineConfig, GenerationEngine, SamplingParams

    engine = GenerationEngine.from_config(EngineConfig(batch_size=args.slots))
    sampling = SamplingParams(max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=0)
    prompts = data["prompts"]
    # The engine renders prompts with the chat template itself, into the very token ids the others get.
    rendered = [engine.format_prompt(p) for p in prompts]
    if engine.tokenizer(rendered, add_special_tokens=False)["input_ids"] != data["input_ids"]:
        raise SystemExit("hf-synth's engine would see other token ids than the other engines")
    engine.generate(prompts[:2], SamplingParams(max_new_tokens=4), progress=False)  # compile/warm up
    started = time.perf_counter()
    outputs = engine.generate(prompts, sampling, progress=False)
    seconds = time.perf_counter() - started
    if [o.prompt_tokens for o in outputs] != [len(ids) for ids in data["input_ids"]]:
        raise SystemExit("hf-synth's engine consumed prompts of other lengths than the other engines")
    return {
        "tokens": sum(o.completion_tokens for o in outputs),
        "seconds": seconds,
        "batch": f"{args.slots} slots, continuous",
    }


def run_plain_generate(data: dict, args) -> dict:
    """transformers' generate on fixed batches of 16 in workload order, as a user would write it."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(data["model_dir"], dtype=torch.float32).eval()
    pad, eos = data["pad_token_id"], data["eos_token_id"]

    def batch_tensors(rows):
        width = max(len(r) for r in rows)
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
        return ids, mask

    def generate(rows, max_new):
        ids, mask = batch_tensors(rows)
        with torch.inference_mode():
            out = model.generate(
                input_ids=ids,
                attention_mask=mask,
                max_new_tokens=max_new,
                do_sample=True,
                temperature=args.temperature,
                top_p=1.0,
                top_k=0,
                pad_token_id=pad,
                eos_token_id=eos,
            )
        count = 0
        for row in out[:, ids.shape[1] :].tolist():
            count += row.index(eos) + 1 if eos in row else len(row)
        return count

    generate(data["input_ids"][:2], 4)
    torch.manual_seed(0)
    tokens, started = 0, time.perf_counter()
    rows = data["input_ids"]
    for start in range(0, len(rows), 16):
        tokens += generate(rows[start : start + 16], args.max_new_tokens)
    return {"tokens": tokens, "seconds": time.perf_counter() - started, "batch": "16, fixed"}


def worker(name: str, args) -> None:
    data = json.loads(Path(args.prompts_file).read_text())
    result = {"hf_synth": run_hf_synth, "plain_generate": run_plain_generate}[name](data, args)
    import torch

    result.update(
        tok_s=result["tokens"] / result["seconds"],
        peak_rss_mb=_peak_rss_mb(),
        threads=torch.get_num_threads(),
    )
    print("RESULT " + json.dumps(result), flush=True)


_LOAD = """
import sys, time
duty = float(sys.argv[1])
while True:
    started = time.perf_counter()
    while time.perf_counter() - started < 0.01 * duty:
        pass
    time.sleep(0.01 * (1 - duty))
"""


def spawn(command: list[str], env: dict | None = None, load: float = 0.0) -> dict:
    """Run one engine's worker; with ``load`` > 0 a neighbour process keeps that share of a core busy."""
    print("$", " ".join(command), flush=True)
    neighbour = subprocess.Popen([sys.executable, "-c", _LOAD, str(load)]) if load > 0 else None
    try:
        proc = subprocess.run(command, capture_output=True, text=True, env=env)
    finally:
        if neighbour is not None:
            neighbour.kill()
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        log = HERE / "results" / f"failed-{Path(command[1]).stem}.log"
        log.write_text(proc.stdout + "\n" + proc.stderr)
        raise SystemExit(
            f"{command[1]} failed ({proc.returncode}); full output in {log}:\n{proc.stderr[-3000:]}"
        )
    return json.loads(lines[-1][len("RESULT ") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=128)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--slots", type=int, default=64)
    parser.add_argument("--engines", default="hf_synth,plain_generate,vllm")
    parser.add_argument("--vllm-python", help="Python of an environment with vllm installed")
    parser.add_argument(
        "--isa", choices=["native", "avx2"], default="native", help="cap every engine at AVX2 (see above)"
    )
    parser.add_argument(
        "--background-load",
        type=float,
        default=0.0,
        help="share of one core a neighbour process keeps busy while each engine runs (0 = none, 1 = a core)",
    )
    parser.add_argument("--out", default=str(HERE / "results" / "throughput.json"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--prompts-file", default=str(HERE / "results" / "throughput_prompts.json"))
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args)
        return

    Path(args.prompts_file).parent.mkdir(parents=True, exist_ok=True)
    env = isa_environment(args.isa)
    cpu = machine_report(env)
    print(
        f"CPU: {cpu['model']}, detected {cpu['detected_isa']}, used {cpu['used_isa']} (torch "
        f"{cpu['torch_capability']}, oneDNN {cpu['onednn_isa']}, numba {cpu['numba_target']}, MKL "
        f"{cpu['mkl_instructions']}); 2048^3 fp32 matmul {cpu['matmul_2048_gflops']} GFLOP/s; "
        f"{cpu['threads']} threads",
        flush=True,
    )
    data = prepare(Path(args.prompts_file), args.prompts)
    common = [
        f"--prompts-file={args.prompts_file}",
        f"--max-new-tokens={args.max_new_tokens}",
        f"--temperature={args.temperature}",
        f"--slots={args.slots}",
    ]
    results = {}
    for name in args.engines.split(","):
        if name == "vllm":
            if not args.vllm_python:
                print("vllm skipped: pass --vllm-python (see README, 'vLLM backend')")
                continue
            command = [args.vllm_python, str(HERE / "vllm_worker.py"), *common]
            # vLLM reserves 20 GiB of KV cache by default on this 24 GiB machine; 4 GiB holds this workload.
            vllm_env = {**env, "VLLM_TARGET_DEVICE": "cpu", "VLLM_CPU_KVCACHE_SPACE": "4"}
            results["vllm"] = spawn(command, vllm_env, args.background_load)
        else:
            results[name] = spawn(
                [sys.executable, __file__, f"--worker={name}", *common], env, args.background_load
            )
        print(name, json.dumps(results[name]), flush=True)

    base = results.get("plain_generate", {}).get("tok_s")
    for result in results.values():
        result["ratio_vs_plain_batch16"] = round(result["tok_s"] / base, 2) if base else None
    report = {
        "command": "python bench/bench_throughput.py " + " ".join(sys.argv[1:]),
        "prompts": len(data["input_ids"]),
        "kinds": {k: data["kinds"].count(k) for k in sorted(set(data["kinds"]))},
        "prompt_tokens_mean": round(sum(map(len, data["input_ids"])) / len(data["input_ids"]), 1),
        "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature,
        "isa": args.isa,
        "background_load": args.background_load,
        "cpu": cpu,
        "cores": os.cpu_count(),
        "results": results,
    }
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(
        f"\n{cpu['model']}, {cpu['used_isa']} ({args.isa}), matmul {cpu['matmul_2048_gflops']} GFLOP/s, "
        f"background load {args.background_load} core"
    )
    print("\n| engine | batching | tokens | seconds | tok/s | × plain batch-16 | peak RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['batch']} | {r['tokens']} | {r['seconds']:.1f} | {r['tok_s']:.1f} | "
            f"{r['ratio_vs_plain_batch16']} | {r['peak_rss_mb']} |"
        )


if __name__ == "__main__":
    main()
