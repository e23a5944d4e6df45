"""Accuracy of the skill classifier on labelled instructions it was not fitted on.

* hf-synth's held-out set (``tests/data/skills_heldout.jsonl``, 12 per skill, written for this project
  separately from the 360 fitting examples in ``hf_synth/curation/skill_examples.jsonl``);
* the same set with the previous method (nearest taxonomy description by embedding cosine), for
  comparison.

    python bench/eval_skills.py     # prints both, per skill, and the confusions; writes bench/results/skills.json
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from datasets import Dataset

    from hf_synth.curation import classify_skills, default_skill_classifier, load_labelled, load_taxonomy

    texts, labels = load_labelled(ROOT / "tests" / "data" / "skills_heldout.jsonl")
    classifier = default_skill_classifier().evaluate(texts, labels)
    nearest = classify_skills(
        Dataset.from_list([{"instruction": t} for t in texts]), taxonomy=load_taxonomy()
    )
    by_skill: dict[str, list[int]] = {}
    for gold, guess in zip(labels, nearest["skill"], strict=True):
        by_skill.setdefault(gold, []).append(int(gold == guess))
    description = {
        "accuracy": round(sum(sum(v) for v in by_skill.values()) / len(labels), 4),
        "per_skill": {s: round(sum(v) / len(v), 4) for s, v in sorted(by_skill.items())},
    }
    result = {"rows": len(labels), "classifier": classifier, "nearest_description": description}
    out = ROOT / "bench" / "results" / "skills.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{len(labels)} held-out instructions\n")
    print("| skill | classifier | nearest description |\n|---|---|---|")
    for skill in classifier["per_skill"]:
        print(f"| {skill} | {classifier['per_skill'][skill]:.0%} | {description['per_skill'][skill]:.0%} |")
    print(f"| **overall** | **{classifier['accuracy']:.1%}** | **{description['accuracy']:.1%}** |")
    print("\nclassifier confusions:", json.dumps(classifier["confusions"]))


if __name__ == "__main__":
    main()
