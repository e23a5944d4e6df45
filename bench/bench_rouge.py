"""Exact ROUGE-L novelty filtering: hf-synth's compiled filter vs the pairwise rouge_score reference.

The reference is the classic Self-Instruct/Alpaca loop: each prompt is scored with rouge_score against
every kept prompt (a process pool over both cores), kept if all scores are below the threshold. Both run
on the same first N prompts of the T0 corpus in one process; the kept sets must be identical. The fast
filter then runs on the whole corpus (the reference would take days there).

    python bench/bench_rouge.py --reference-sizes 1000 --full
"""

from __future__ import annotations

import argparse
import json
import time
from functools import partial
from multiprocessing import Pool
from pathlib import Path

from rouge_score import rouge_scorer

from hf_synth.filters import greedy_novelty_fast

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "t0_prompts_41k.jsonl"
_SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def _score(kept: str, text: str) -> float:
    return _SCORER.score(kept, text)["rougeL"].fmeasure


def reference(texts: list[str], threshold: float, pool: Pool) -> list[bool]:
    kept: list[str] = []
    keep = []
    for text in texts:
        scores = pool.map(partial(_score, text=text), kept, chunksize=64) if kept else []
        ok = max(scores, default=0.0) < threshold
        keep.append(ok)
        if ok:
            kept.append(text)
    return keep


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reference-sizes", default="1000")
    parser.add_argument("--threshold", type=float, default=0.7)
    parser.add_argument("--full", action="store_true", help="also time the fast filter on the whole corpus")
    parser.add_argument("--out", default="bench/results/rouge.json")
    args = parser.parse_args()
    texts = [json.loads(line)["instruction"] for line in CORPUS.read_text().splitlines()]
    greedy_novelty_fast(texts[:50], args.threshold)  # compile (cached on disk after the first run)
    report: dict = {"threshold": args.threshold, "corpus": len(texts), "sizes": {}}
    print("| prompts | reference s | fast s | speed-up | kept | identical |\n|---|---|---|---|---|---|")
    with Pool(2) as pool:
        for n in [int(x) for x in args.reference_sizes.split(",") if x]:
            started = time.perf_counter()
            ref = reference(texts[:n], args.threshold, pool)
            ref_s = time.perf_counter() - started
            started = time.perf_counter()
            fast = greedy_novelty_fast(texts[:n], args.threshold)
            fast_s = time.perf_counter() - started
            same = list(fast.keep) == ref
            report["sizes"][n] = {
                "reference_s": round(ref_s, 2),
                "fast_s": round(fast_s, 3),
                "speedup": round(ref_s / fast_s, 1),
                "kept": sum(ref),
                "identical": same,
            }
            print(f"| {n} | {ref_s:.1f} | {fast_s:.3f} | {ref_s / fast_s:.0f}× | {sum(ref)} | {same} |")
            if not same:
                raise SystemExit("kept sets differ")
    if args.full:
        started = time.perf_counter()
        fast = greedy_novelty_fast(texts, args.threshold)
        seconds = time.perf_counter() - started
        report["full"] = {
            "prompts": len(texts),
            "fast_s": round(seconds, 2),
            "kept": int(fast.keep.sum()),
            "lcs_computed": fast.lcs_computed,
        }
        print(
            f"\nfull corpus: {len(texts)} prompts in {seconds:.2f}s, kept {int(fast.keep.sum())}, "
            f"{fast.lcs_computed} LCS computations (of ~{len(texts) * int(fast.keep.sum()) // 2:,} pairs)"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
