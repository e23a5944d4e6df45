#!/usr/bin/env python
"""Show why rows were rejected in an hf-synth run: counts per reason and a few examples of each.

    python scripts/inspect_rejected.py runs/demo [--examples 2]

Use it to tune filters: a reason that drops many rows that look fine is a threshold to loosen.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter, defaultdict
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_dir", type=Path, help="Output folder of an hf-synth run")
    parser.add_argument("--examples", type=int, default=2, help="Examples to show per reason")
    args = parser.parse_args()

    path = args.run_dir / "rejected.jsonl"
    if not path.is_file():
        raise SystemExit(f"{path} not found: pass the --output folder of an hf-synth run")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    counts: Counter = Counter()
    examples: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        for reason in row["filter_reasons"]:
            counts[reason] += 1
            if len(examples[reason]) < args.examples:
                examples[reason].append(row)
    print(f"{len(rows)} rejected rows in {path}")
    for reason, count in counts.most_common():
        print(f"\n== {reason}: {count}")
        for row in examples[reason]:
            print(f"  [{row['stage']}] {row['instruction'][:120]!r}")
            if row.get("output"):
                print(f"      output: {row['output'][:120]!r}")


if __name__ == "__main__":
    main()
