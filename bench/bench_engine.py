"""Generation throughput of the engine vs one-prompt-at-a-time and plain batch-16 ``generate``.

All three run the same Self-Instruct prompts (instruction-generation requests built from the 175
Self-Instruct seed tasks, and instance prompts for seed instructions) on the embedded default model,
with the same sampling parameters, in one process. Prints a Markdown table row set and writes JSON.

    python bench/bench_engine.py --prompts 32 --max-new-tokens 128
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import torch

from hf_synth import EngineConfig, GenerationEngine, SamplingParams, SelfInstructConfig, render_messages
from hf_synth.self_instruct import build_instruction_requests

SEEDS = Path(__file__).resolve().parents[2] / "shared" / "data" / "self_instruct_seed_tasks.jsonl"


def build_prompts(n: int) -> list:
    rows = [json.loads(line) for line in SEEDS.read_text().splitlines()]
    seeds = [{"id": r["id"], "instruction": r["instruction"]} for r in rows]
    config = SelfInstructConfig(requests_per_round=n // 2, seed=0)
    requests = build_instruction_requests(seeds, [], config, 0)
    prompts = list(requests["prompt"])
    for row in rows[: n - len(prompts)]:
        prompts.append(
            render_messages("self_instruct/input_first", instruction=row["instruction"], example=None)
        )
    return prompts


def plain_generate(
    engine: GenerationEngine, prompts: list, sampling: SamplingParams, batch_size: int
) -> tuple[int, float]:
    """transformers' generate on fixed batches in the given order (no sorting), as a user would write it."""
    tok, model = engine.tokenizer, engine.model
    texts = [engine.format_prompt(p) for p in prompts]
    tokens, started = 0, time.perf_counter()
    for i in range(0, len(texts), batch_size):
        enc = tok(texts[i : i + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
        torch.manual_seed(sampling.seed)
        with torch.inference_mode():
            out = model.generate(
                **enc,
                max_new_tokens=sampling.max_new_tokens,
                do_sample=True,
                temperature=sampling.temperature,
                top_p=sampling.top_p,
                top_k=0,
                pad_token_id=tok.pad_token_id,
            )
        new = out[:, enc["input_ids"].shape[1] :]
        for row in new.tolist():
            stop = next((j for j, t in enumerate(row) if t == tok.eos_token_id), None)
            tokens += len(row) if stop is None else stop + 1
    return tokens, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--batch-sizes", default="16,32")
    parser.add_argument("--skip-sequential", action="store_true")
    parser.add_argument("--out", default="bench/results/engine.json")
    args = parser.parse_args()

    prompts = build_prompts(args.prompts)
    sampling = SamplingParams(max_new_tokens=args.max_new_tokens, temperature=0.7, top_p=0.9, seed=0)
    engine = GenerationEngine.from_config(EngineConfig(batch_size=16, backend="transformers"))
    engine.generate(prompts[:2], SamplingParams(max_new_tokens=4), progress=False)  # warm-up
    results = {}

    def timed(batch_size: int) -> dict:
        engine.batch_size = batch_size
        before = engine.stats.completion_tokens
        started = time.perf_counter()
        engine.generate(prompts, sampling, progress=False)
        wall = time.perf_counter() - started
        tokens = engine.stats.completion_tokens - before
        return {"tokens": tokens, "seconds": round(wall, 2), "tok_s": round(tokens / wall, 1)}

    for bs in [int(b) for b in args.batch_sizes.split(",")]:
        results[f"engine_batch{bs}"] = timed(bs)
    tokens, seconds = plain_generate(engine, prompts, sampling, 16)
    results["plain_generate_batch16"] = {
        "tokens": tokens,
        "seconds": round(seconds, 2),
        "tok_s": round(tokens / seconds, 1),
    }
    if not args.skip_sequential:
        results["one_at_a_time"] = timed(1)

    base_seq = results.get("one_at_a_time", {}).get("tok_s")
    base_plain = results["plain_generate_batch16"]["tok_s"]
    for r in results.values():
        r["ratio_vs_one_at_a_time"] = round(r["tok_s"] / base_seq, 2) if base_seq else None
        r["ratio_vs_plain_batch16"] = round(r["tok_s"] / base_plain, 2)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = {
        "prompts": len(prompts),
        "max_new_tokens": args.max_new_tokens,
        "temperature": 0.7,
        "top_p": 0.9,
        "model": engine.model_id,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "peak_rss_mb": round(peak_rss_mb),
        "results": results,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print("| run | tokens | seconds | tok/s | × one-at-a-time | × plain batch-16 |")
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        print(
            f"| {name} | {r['tokens']} | {r['seconds']} | {r['tok_s']} | {r['ratio_vs_one_at_a_time']} | "
            f"{r['ratio_vs_plain_batch16']} |"
        )
    print(f"peak RSS {peak_rss_mb:.0f} MB, {torch.get_num_threads()} threads")


if __name__ == "__main__":
    main()
