"""Checks that need third-party real data (``../shared/data``), kept out of the test suite.

* the classification heuristic against the labels of the 175 Self-Instruct seed tasks (0.92 measured);
* the compiled ROUGE-L novelty filter against the pure-Python reference on real instructions (the seeds
  and the user-oriented set) at several thresholds, and on 600 long T0 prompts.

    python bench/check_real_data.py

Exits non-zero when a check fails; says so and exits 0 when the data is not beside the checkout.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines()]


def main() -> int:
    if not DATA.is_dir():
        print(f"note: {DATA} is not there; nothing to check")
        return 0
    from hf_synth.filters import greedy_novelty, greedy_novelty_fast
    from hf_synth.self_instruct.parsing import looks_like_classification

    failures = []
    seeds = rows("self_instruct_seed_tasks.jsonl")
    predicted = [looks_like_classification(r["instruction"]) for r in seeds]
    gold = [r["is_classification"] for r in seeds]
    accuracy = sum(p == g for p, g in zip(predicted, gold, strict=True)) / len(gold)
    hits = sum(p and g for p, g in zip(predicted, gold, strict=True))
    print(f"classification heuristic on {len(seeds)} seed tasks: accuracy {accuracy:.3f}, {hits} found")
    if accuracy < 0.9 or hits < 14:
        failures.append("classification heuristic")

    texts = [r["instruction"] for r in seeds] + [
        r["instruction"] for r in rows("user_oriented_instructions.jsonl")
    ]
    for threshold in (0.3, 0.5, 0.7, 0.9, 1.0):
        fast = list(greedy_novelty_fast(texts, threshold).keep)
        reference = [d.keep for d in greedy_novelty(texts, [], threshold=threshold)]
        print(
            f"novelty on {len(texts)} real instructions at {threshold}: {sum(fast)} kept, equal {fast == reference}"
        )
        if fast != reference:
            failures.append(f"novelty at {threshold}")
    long = [r["instruction"] for r in rows("t0_prompts_41k.jsonl")[:600]]
    equal = list(greedy_novelty_fast(long).keep) == [d.keep for d in greedy_novelty(long, [])]
    print(f"novelty on 600 long T0 prompts: equal {equal}")
    if not equal:
        failures.append("novelty on T0 prompts")
    if failures:
        print("FAILED: " + ", ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
