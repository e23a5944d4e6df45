"""Every generation backend on one GPU, on the same prompts: throughput, memory, greedy agreement.

The default model (SmolLM2-135M-Instruct) in bfloat16, the throughput workload of ``bench/workload.py``
(Self-Instruct, Evol-Instruct and answer prompts), max_new_tokens 256, temperature 0.7. Engines, all in
this process one after the other (peak GPU memory reset between them):

* ``continuous``: hf-synth's default GPU backend (continuous batching, fixed-shape decode steps replayed
  as CUDA graphs);
* ``continuous_eager``: the same without CUDA graphs (what the graphs are worth);
* ``transformers``: hf-synth's ``model.generate`` on fixed, length-sorted batches;
* ``transformers_paged``: hf-synth through transformers' ``generate_batch``;
* ``generate_batch``: transformers' ``model.generate_batch`` called directly (the baseline of the ratio);
* ``plain_generate``: ``model.generate`` on batches of 16 in workload order, on the first
  ``--plain-prompts`` prompts (it is slow; its tok/s is the second baseline);
* ``vllm`` when vllm is importable.

Greedy agreement: ``--agreement-prompts`` prompts x ``--agreement-tokens`` tokens, each hf-synth backend
against ``model.generate`` one prompt at a time in the same dtype (share of equal texts); with
``--fp32-agreement`` also the continuous backend in float32 (all must be equal).

    python bench/bench_gpu.py                          # on a GPU machine
    python bench/bench_gpu.py --device cpu --prompts 16 --max-new-tokens 32 --plain-prompts 16 \\
        --agreement-prompts 4 --agreement-tokens 16    # a dry run of the script on a CPU

Prints a Markdown table and writes ``bench/results/gpu.json``.
"""

from __future__ import annotations

import argparse
import gc
import json
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ENGINES = (
    "continuous",
    "continuous_eager",
    "transformers",
    "transformers_paged",
    "generate_batch",
    "plain_generate",
    "vllm",
)


def machine(device) -> dict:
    import torch
    import transformers

    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cpu": platform.processor() or platform.machine(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
        info["cuda"] = torch.version.cuda
    return info


def reset_memory(device) -> None:
    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_mb(device) -> int | None:
    import torch

    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated(device) / 2**20)


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_hf_synth(name, model, tokenizer, prompts, args, device) -> dict:
    from hf_synth.engine import GenerationEngine, SamplingParams

    backend = {"continuous_eager": "continuous", "transformers_paged": "transformers-paged"}.get(name, name)
    engine = GenerationEngine(model, tokenizer, model_id="default", batch_size=args.slots, backend=backend)
    if name == "continuous_eager":
        engine.runner.cuda_graphs = False
    engine.generate(prompts[:2], SamplingParams(max_new_tokens=4), progress=False)  # load kernels
    sampling = SamplingParams(max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=0)
    sync(device)
    started = time.perf_counter()
    outputs = engine.generate(prompts, sampling, progress=False)
    sync(device)
    seconds = time.perf_counter() - started
    result = {"tokens": sum(o.completion_tokens for o in outputs), "seconds": seconds}
    graphs = getattr(engine.runner, "graphs", None)
    if graphs is not None:
        result["cuda_graphs_captured"] = graphs.captured
        result["slots"] = graphs.slots
    result["batch"] = engine.batch_size
    return result


def run_generate_batch(model, tokenizer, ids, args, device) -> dict:
    from transformers import GenerationConfig

    def config(max_new):
        return GenerationConfig(
            max_new_tokens=max_new,
            do_sample=True,
            temperature=args.temperature,
            top_p=1.0,
            top_k=0,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )

    model.generate_batch(ids[:2], generation_config=config(4))
    sync(device)
    started = time.perf_counter()
    results = model.generate_batch(ids, generation_config=config(args.max_new_tokens))
    sync(device)
    seconds = time.perf_counter() - started
    eos = tokenizer.eos_token_id
    tokens = 0
    for out in results.values():
        generated = list(out.generated_tokens)
        tokens += generated.index(eos) + 1 if eos in generated else len(generated)
    return {"tokens": tokens, "seconds": seconds, "batch": "its scheduler"}


def run_plain_generate(model, tokenizer, ids, args, device) -> dict:
    import torch

    pad, eos = tokenizer.pad_token_id, tokenizer.eos_token_id

    def generate(rows, max_new):
        width = max(len(r) for r in rows)
        batch = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=device)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], device=device)
        with torch.inference_mode():
            out = model.generate(
                input_ids=batch,
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
        for row in out[:, width:].tolist():
            count += row.index(eos) + 1 if eos in row else len(row)
        return count

    generate(ids[:2], 4)
    torch.manual_seed(0)
    rows = ids[: args.plain_prompts]
    sync(device)
    started, tokens = time.perf_counter(), 0
    for start in range(0, len(rows), 16):
        tokens += generate(rows[start : start + 16], args.max_new_tokens)
    sync(device)
    return {
        "tokens": tokens,
        "seconds": time.perf_counter() - started,
        "batch": f"16, fixed, first {len(rows)} prompts",
    }


def run_vllm(ids, args) -> dict | None:
    try:
        import vllm
    except ImportError:
        return None
    from hf_synth.engine import default_model_path

    llm = vllm.LLM(model=str(default_model_path()), dtype=args.dtype, seed=0, max_num_seqs=args.slots)
    params = vllm.SamplingParams(max_tokens=args.max_new_tokens, temperature=args.temperature, top_p=1.0)
    llm.generate([{"prompt_token_ids": i} for i in ids[:2]], vllm.SamplingParams(max_tokens=4))
    started = time.perf_counter()
    results = llm.generate([{"prompt_token_ids": i} for i in ids], params, use_tqdm=False)
    seconds = time.perf_counter() - started
    tokens = sum(len(r.outputs[0].token_ids) for r in results)
    del llm
    return {"tokens": tokens, "seconds": seconds, "batch": "its scheduler"}


def agreement(model, tokenizer, prompts, args, names) -> dict:
    """Share of greedy texts equal to one-prompt-at-a-time ``model.generate`` in the model's dtype, and
    the mean number of leading tokens that agree."""
    from hf_synth.engine import GenerationEngine, SamplingParams

    greedy = SamplingParams(max_new_tokens=args.agreement_tokens, temperature=0)
    reference_engine = GenerationEngine(model, tokenizer, batch_size=1, backend="transformers")
    reference = reference_engine.generate(prompts, greedy, progress=False)
    reference_ids = [tokenizer(o.text, add_special_tokens=False)["input_ids"] for o in reference]
    out = {}
    for name in names:
        backend = {"continuous_eager": "continuous", "transformers_paged": "transformers-paged"}.get(
            name, name
        )
        engine = GenerationEngine(model, tokenizer, batch_size=args.slots, backend=backend)
        if name == "continuous_eager":
            engine.runner.cuda_graphs = False
        outputs = engine.generate(prompts, greedy, progress=False)
        equal = sum(o.text == r.text for o, r in zip(outputs, reference, strict=True))
        common = []
        for o, ref in zip(outputs, reference_ids, strict=True):
            ids = tokenizer(o.text, add_special_tokens=False)["input_ids"]
            n = 0
            while n < min(len(ids), len(ref)) and ids[n] == ref[n]:
                n += 1
            common.append(n)
        out[name] = {
            "equal_texts": equal,
            "prompts": len(prompts),
            "share": round(equal / len(prompts), 3),
            "mean_common_prefix_tokens": round(sum(common) / len(common), 1),
        }
        print(f"agreement {name}: {out[name]}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float16", "float32"])
    parser.add_argument("--prompts", type=int, default=256)
    parser.add_argument("--plain-prompts", type=int, default=128)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.7)
    parser.add_argument("--slots", type=int, default=None, help="batch size / slots (default: backend's)")
    parser.add_argument("--engines", default=",".join(ENGINES))
    parser.add_argument("--agreement-prompts", type=int, default=32)
    parser.add_argument("--agreement-tokens", type=int, default=64)
    parser.add_argument("--fp32-agreement", action="store_true")
    parser.add_argument("--out", default=str(HERE / "results" / "gpu.json"))
    args = parser.parse_args()

    import torch

    sys.path.insert(0, str(HERE))
    from workload import build_workload

    from hf_synth.engine import EngineConfig, load_engine

    device = torch.device(args.device)
    base = load_engine(EngineConfig(backend="transformers", dtype=args.dtype, device=args.device))
    model, tokenizer = base.model, base.tokenizer
    workload = build_workload(args.prompts)
    prompts = [w["prompt"] for w in workload]
    ids = tokenizer([base.format_prompt(p) for p in prompts], add_special_tokens=False)["input_ids"]
    report = {
        "command": "python bench/bench_gpu.py " + " ".join(sys.argv[1:]),
        "machine": machine(device),
        "dtype": args.dtype,
        "prompts": len(prompts),
        "prompt_tokens_mean": round(sum(map(len, ids)) / len(ids), 1),
        "max_new_tokens": args.max_new_tokens,
        "temperature": args.temperature,
        "results": {},
    }
    print(json.dumps(report["machine"]), flush=True)
    names = [n for n in args.engines.split(",") if n]
    unknown = sorted(set(names) - set(ENGINES))
    if unknown:
        raise SystemExit(f"unknown engines {unknown}; choose from {list(ENGINES)}")
    for name in names:
        reset_memory(device)
        try:
            if name == "generate_batch":
                result = run_generate_batch(model, tokenizer, ids, args, device)
            elif name == "plain_generate":
                result = run_plain_generate(model, tokenizer, ids, args, device)
            elif name == "vllm":
                result = run_vllm(ids, args)
                if result is None:
                    print("vllm: not installed, skipped", flush=True)
                    continue
            else:
                result = run_hf_synth(name, model, tokenizer, prompts, args, device)
        except Exception as err:  # one failing engine must not hide the others' figures
            result = {"error": f"{type(err).__name__}: {err}"}
            print(f"{name}: FAILED {result['error']}", flush=True)
            report["results"][name] = result
            continue
        result["tok_s"] = round(result["tokens"] / result["seconds"], 1)
        result["peak_gpu_mb"] = peak_memory_mb(device)
        report["results"][name] = result
        print(name, json.dumps(result), flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2))

    ok = {k: v for k, v in report["results"].items() if "tok_s" in v}
    for base_name, key in (("generate_batch", "x_generate_batch"), ("plain_generate", "x_plain_batch16")):
        base_rate = ok.get(base_name, {}).get("tok_s")
        for result in ok.values():
            result[key] = round(result["tok_s"] / base_rate, 2) if base_rate else None

    hf_names = [
        n for n in names if n in ("continuous", "continuous_eager", "transformers", "transformers_paged")
    ]
    if args.agreement_prompts and hf_names:
        report["agreement"] = {
            args.dtype: agreement(model, tokenizer, prompts[: args.agreement_prompts], args, hf_names)
        }
    if args.fp32_agreement:
        del base, model
        reset_memory(device)
        fp32 = load_engine(EngineConfig(backend="transformers", dtype="float32", device=args.device))
        report["agreement"]["float32"] = agreement(
            fp32.model, fp32.tokenizer, prompts[: args.agreement_prompts], args, ["continuous"]
        )
    Path(args.out).write_text(json.dumps(report, indent=2))

    print(
        f"\n{report['machine']}; {args.dtype}; {len(prompts)} prompts, max_new_tokens {args.max_new_tokens}"
    )
    print(
        "| engine | batching | tokens | seconds | tok/s | × generate_batch | × plain batch-16 | peak GPU MB |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, r in report["results"].items():
        if "error" in r:
            print(f"| {name} | failed: {r['error'][:80]} | | | | | | |")
            continue
        print(
            f"| {name} | {r['batch']} | {r['tokens']} | {r['seconds']:.1f} | {r['tok_s']} | "
            f"{r.get('x_generate_batch')} | {r.get('x_plain_batch16')} | {r['peak_gpu_mb']} |"
        )
    for dtype, rows in report.get("agreement", {}).items():
        for name, a in rows.items():
            print(
                f"greedy agreement {dtype} {name}: {a['equal_texts']}/{a['prompts']} equal texts, "
                f"{a['mean_common_prefix_tokens']} leading tokens equal on average"
            )


if __name__ == "__main__":
    main()
