"""Every generation backend on one GPU, on the same prompts: throughput, memory, greedy agreement.

The default model (SmolLM2-135M-Instruct) in bfloat16, the throughput workload of ``bench/workload.py``
(Self-Instruct, Evol-Instruct and answer prompts), max_new_tokens 256, temperature 0.7. Engines, all in
this process one after the other (peak GPU memory reset between them):

* ``default``: hf-synth's ``auto`` backend, what a user gets (its choice and the reason, self-check
  included, are recorded);
* ``continuous``: hf-synth's continuous batcher named explicitly (continuous batching, fixed-shape decode steps replayed
  as CUDA graphs);
* ``continuous_eager``: the same without CUDA graphs (what the graphs are worth);
* ``transformers``: hf-synth's ``model.generate`` on fixed, length-sorted batches;
* ``transformers_paged``: hf-synth through transformers' ``generate_batch``;
* ``generate_batch``: transformers' ``model.generate_batch`` called directly (the baseline of the ratio);
* ``plain_generate``: ``model.generate`` on batches of 16 in workload order, on the first
  ``--plain-prompts`` prompts (it is slow; its tok/s is the second baseline);
* ``vllm`` when vllm is importable.

Every engine is warmed up first on the ``--warmup-prompts`` longest prompts at the real
``max_new_tokens`` (so the timed run neither grows the KV cache nor captures graphs for longer lengths;
``cuda_graphs_captured_in_timed_run`` says how many row-bucket graphs were still captured inside it).

Greedy agreement: ``--agreement-prompts`` prompts x ``--agreement-tokens`` tokens, each hf-synth backend
against ``model.generate`` one prompt at a time in the same dtype (share of equal texts); with
``--fp32-agreement`` also the continuous backend in float32 (all must be equal). A backend that fails
there is recorded as failed; the others go on.

``--prompts-file`` reads the prompts from a JSONL file (``{"prompt": ...}`` per line, e.g.
``bench/data/gpu_prompts.jsonl``, written by ``bench/gpu_check.sh prepare``) instead of building the
workload (which needs ``datasets``); ``--model`` names a model folder instead of the embedded default.

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
    "default",
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


BACKEND_OF = {"default": "auto", "continuous_eager": "continuous", "transformers_paged": "transformers-paged"}


def make_engine(name, model, tokenizer, slots):
    from hf_synth.engine import GenerationEngine

    backend = BACKEND_OF.get(name, name)
    engine = GenerationEngine(model, tokenizer, model_id="default", batch_size=slots, backend=backend)
    if name == "continuous_eager":
        engine.runner.cuda_graphs = False
    return engine


def warmup_prompts(prompts, lengths, n: int) -> list:
    """The ``n`` longest prompts: a warm-up on them reaches the timed run's cache capacity."""
    order = sorted(range(len(prompts)), key=lambda i: -lengths[i])
    return [prompts[i] for i in order[: max(n, 1)]]


def run_hf_synth(name, model, tokenizer, prompts, lengths, args, device) -> dict:
    from hf_synth.engine import SamplingParams

    engine = make_engine(name, model, tokenizer, args.slots)
    sampling = SamplingParams(max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=0)
    warm_started = time.perf_counter()
    engine.generate(warmup_prompts(prompts, lengths, args.warmup_prompts), sampling, progress=False)
    sync(device)
    warmup_seconds = time.perf_counter() - warm_started
    graphs = getattr(engine.runner, "graphs", None)
    captured_before = graphs.captured if graphs is not None else 0
    started = time.perf_counter()
    outputs = engine.generate(prompts, sampling, progress=False)
    sync(device)
    seconds = time.perf_counter() - started
    result = {
        "backend": engine.backend,
        "tokens": sum(o.completion_tokens for o in outputs),
        "seconds": seconds,
        "warmup_seconds": round(warmup_seconds, 2),
    }
    if name == "default":
        result["backend_reason"] = engine.backend_reason
    after = getattr(engine.runner, "graphs", None)
    if after is not None:
        result["cuda_graphs_captured"] = after.captured
        result["cuda_graphs_captured_in_timed_run"] = after.captured - (
            captured_before if after is graphs else 0
        )
        result["cache_rebuilt_in_timed_run"] = after is not graphs
        result["slots"] = after.slots
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

    kwargs = {}
    if device.type == "cpu":  # transformers sizes its cache from the machine's whole memory there
        try:
            from transformers.generation import ContinuousBatchingConfig

            kwargs["continuous_batching_config"] = ContinuousBatchingConfig(max_memory_percent=0.05)
        except ImportError:
            pass
    longest = sorted(ids, key=len, reverse=True)[: max(args.warmup_prompts, 1)]
    model.generate_batch(longest, generation_config=config(args.max_new_tokens), progress_bar=False, **kwargs)
    sync(device)
    started = time.perf_counter()
    results = model.generate_batch(
        ids, generation_config=config(args.max_new_tokens), progress_bar=False, **kwargs
    )
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

    generate(sorted(ids, key=len, reverse=True)[:16], args.max_new_tokens)  # warm-up at the real length
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
    llm.generate([{"prompt_token_ids": i} for i in ids[:16]], params, use_tqdm=False)
    started = time.perf_counter()
    results = llm.generate([{"prompt_token_ids": i} for i in ids], params, use_tqdm=False)
    seconds = time.perf_counter() - started
    tokens = sum(len(r.outputs[0].token_ids) for r in results)
    del llm
    return {"tokens": tokens, "seconds": seconds, "batch": "its scheduler"}


def agreement(model, tokenizer, prompts, args, names) -> dict:
    """Share of greedy texts equal to one-prompt-at-a-time ``model.generate`` in the model's dtype, and
    the mean number of leading tokens that agree; a backend that fails is recorded with its error."""
    from hf_synth.engine import GenerationEngine, SamplingParams

    greedy = SamplingParams(max_new_tokens=args.agreement_tokens, temperature=0)
    try:
        reference_engine = GenerationEngine(model, tokenizer, batch_size=1, backend="transformers")
        reference = reference_engine.generate(prompts, greedy, progress=False)
    except Exception as err:  # no reference, no agreement; the throughput figures stand
        print(f"agreement: the reference failed: {type(err).__name__}: {err}", flush=True)
        return {"error": f"reference generate failed: {type(err).__name__}: {err}"}
    reference_ids = [tokenizer(o.text, add_special_tokens=False)["input_ids"] for o in reference]
    out = {}
    for name in names:
        try:
            engine = make_engine(name, model, tokenizer, args.slots)
            outputs = engine.generate(prompts, greedy, progress=False)
        except Exception as err:  # one failing backend must not hide the others' agreement
            out[name] = {"error": f"{type(err).__name__}: {err}"}
            print(f"agreement {name}: FAILED {out[name]['error']}", flush=True)
            continue
        equal = sum(o.text == r.text for o, r in zip(outputs, reference, strict=True))
        common = []
        for o, ref in zip(outputs, reference_ids, strict=True):
            ids = tokenizer(o.text, add_special_tokens=False)["input_ids"]
            n = 0
            while n < min(len(ids), len(ref)) and ids[n] == ref[n]:
                n += 1
            common.append(n)
        out[name] = {
            "backend": engine.backend,
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
    parser.add_argument("--warmup-prompts", type=int, default=64, help="longest prompts run before timing")
    parser.add_argument("--model", default=None, help="model folder (default: the embedded default model)")
    parser.add_argument("--prompts-file", default=None, help='JSONL of {"prompt": ...} (no datasets needed)')
    parser.add_argument("--skip-throughput", action="store_true", help="greedy agreement only")
    parser.add_argument("--out", default=str(HERE / "results" / "gpu.json"))
    args = parser.parse_args()

    import torch

    from hf_synth.engine import EngineConfig, load_engine

    device = torch.device(args.device)
    model_config = {"model": args.model, "dtype": args.dtype, "device": args.device}
    base = load_engine(EngineConfig(backend="transformers", **model_config))
    model, tokenizer = base.model, base.tokenizer
    if args.prompts_file:
        lines = Path(args.prompts_file).read_text(encoding="utf-8").splitlines()
        prompts = [json.loads(line)["prompt"] for line in lines if line.strip()][: args.prompts]
    else:
        sys.path.insert(0, str(HERE))
        from workload import build_workload

        prompts = [w["prompt"] for w in build_workload(args.prompts)]
    ids = tokenizer([base.format_prompt(p) for p in prompts], add_special_tokens=False)["input_ids"]
    lengths = [len(i) for i in ids]
    report = {
        "command": "python bench/bench_gpu.py " + " ".join(sys.argv[1:]),
        "machine": machine(device),
        "dtype": args.dtype,
        "model": args.model or "the embedded default",
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
    for name in [] if args.skip_throughput else names:
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
                result = run_hf_synth(name, model, tokenizer, prompts, lengths, args, device)
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

    hf_names = [n for n in names if n in ("default", *BACKEND_OF, "continuous", "transformers")]
    report["agreement"] = {}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    if args.agreement_prompts and hf_names:
        report["agreement"][args.dtype] = agreement(
            model, tokenizer, prompts[: args.agreement_prompts], args, hf_names
        )
        Path(args.out).write_text(json.dumps(report, indent=2))
    if args.fp32_agreement:
        del base, model
        reset_memory(device)
        try:
            fp32 = load_engine(EngineConfig(backend="transformers", **{**model_config, "dtype": "float32"}))
            report["agreement"]["float32"] = agreement(
                fp32.model, fp32.tokenizer, prompts[: args.agreement_prompts], args, ["continuous"]
            )
        except Exception as err:
            report["agreement"]["float32"] = {"error": f"{type(err).__name__}: {err}"}
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
        if "error" in rows:
            print(f"greedy agreement {dtype}: failed: {rows['error']}")
            continue
        for name, a in rows.items():
            if "error" in a:
                print(f"greedy agreement {dtype} {name}: failed: {a['error']}")
                continue
            print(
                f"greedy agreement {dtype} {name}: {a['equal_texts']}/{a['prompts']} equal texts, "
                f"{a['mean_common_prefix_tokens']} leading tokens equal on average"
            )


if __name__ == "__main__":
    main()
