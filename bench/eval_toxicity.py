"""Toxicity classifier candidates on hf-synth's own labelled sentences (tests/data/toxicity_eval.jsonl:
15 toxic, 15 benign, the benign ones full of words a word list trips on: kill the process, beat the eggs,
Scunthorpe, sex education, shoot photos).

    python bench/eval_toxicity.py [--model PATH_OR_HUB_ID]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from hf_synth.filters.toxicity import toxicity_scores

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "toxicity_eval.jsonl"


def report(name: str, predictions: list[bool], gold: list[bool]) -> None:
    accuracy = sum(p == g for p, g in zip(predictions, gold, strict=True)) / len(gold)
    fp = sum(p and not g for p, g in zip(predictions, gold, strict=True))
    fn = sum(g and not p for p, g in zip(predictions, gold, strict=True))
    print(f"| {name} | {accuracy:.0%} | {fp} | {fn} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", help="a transformers toxicity classifier to compare too")
    args = parser.parse_args()
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    texts, gold = [r["text"] for r in rows], [bool(r["toxic"]) for r in rows]
    print("| classifier | accuracy | false positives | false negatives |\n|---|---|---|---|")
    scores = toxicity_scores(texts)
    for threshold in (0.5, 0.8):
        report(f"alt-profanity-check (linear SVM), >= {threshold}", [s >= threshold for s in scores], gold)
    try:
        from better_profanity import profanity

        report("better-profanity (word list)", [profanity.contains_profanity(t) for t in texts], gold)
    except ImportError:
        print("| better-profanity | not installed | | |")
    if args.model:
        report(f"{args.model}, >= 0.5", [s >= 0.5 for s in toxicity_scores(texts, args.model)], gold)


if __name__ == "__main__":
    main()
