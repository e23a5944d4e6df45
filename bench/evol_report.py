"""Elimination shares and complexity change of an Evol-Instruct run (reads its output folder).

python bench/evol_report.py runs/evol
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from statistics import mean


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir", type=Path)
    args = parser.parse_args()
    kept = _rows(args.run_dir / "data.jsonl")
    eliminated = _rows(args.run_dir / "rejected.jsonl")
    total = len(kept) + len(eliminated)
    print(f"{total} evolutions: {len(kept)} kept ({len(kept) / total:.0%}), {len(eliminated)} eliminated")
    first = Counter(r["elimination_reason"] for r in eliminated)
    print("\n| reason (first) | rows | share of all evolutions |\n|---|---|---|")
    for reason, n in first.most_common():
        print(f"| `{reason}` | {n} | {n / total:.1%} |")
    print("\n| operation | evolved | kept | kept share |\n|---|---|---|---|")
    ops = Counter(r["evolution_op"] for r in kept + eliminated)
    kept_ops = Counter(r["evolution_op"] for r in kept)
    for op, n in sorted(ops.items()):
        print(f"| {op} | {n} | {kept_ops[op]} | {kept_ops[op] / n:.0%} |")
    print("\nKept evolutions, mean change against their parent:")
    print("| rows | n | words | clauses | constraint cues | ROUGE-L to parent |\n|---|---|---|---|---|---|")
    for label, group in (
        ("in-depth", [r for r in kept if r["evolution_op"] != "breadth"]),
        ("breadth", [r for r in kept if r["evolution_op"] == "breadth"]),
    ):
        if not group:
            continue
        s = [r["scores"] for r in group]
        print(
            f"| {label} | {len(group)} | {mean(x['words'] - x['words_parent'] for x in s):+.1f} "
            f"({mean(x['words_parent'] for x in s):.1f} → {mean(x['words'] for x in s):.1f}) | "
            f"{mean(x['clauses'] - x['clauses_parent'] for x in s):+.2f} | "
            f"{mean(x['constraints'] - x['constraints_parent'] for x in s):+.2f} | "
            f"{mean(x['rouge_l_parent'] for x in s):.2f} |"
        )
    summary = json.loads((args.run_dir / "summary.json").read_text())
    check = summary.get("judge_self_check") or {}
    if check:
        print(
            f"\nJudge self-check: {check['correct']}/{check['total']}; enforced: {summary['judge_enforced']}"
        )


if __name__ == "__main__":
    main()
