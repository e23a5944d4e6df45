"""Which skill an instruction exercises: a logistic-regression classifier over sentence embeddings of
labelled instructions.

The default is fitted on ``skill_examples.jsonl`` (30 instructions per skill of the default taxonomy,
written for this project) and measured on a separate labelled set it never saw
(``tests/data/skills_heldout.jsonl``; ``bench/eval_skills.py``, figures in BENCHMARKS.md). Users fit
their own from any labelled set with ``instruction`` and ``skill`` columns (``SkillClassifier.fit`` or
``hf-synth report --skill-examples FILE``). Fitting takes a second; the default is cached per process.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_EXAMPLES = Path(__file__).parent / "skill_examples.jsonl"


def load_labelled(path: str | Path) -> tuple[list[str], list[str]]:
    """Texts and skills of a labelled JSONL file (one ``{"instruction": ..., "skill": ...}`` per line)."""
    texts, labels = [], []
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            texts.append(str(row["instruction"]))
            labels.append(str(row["skill"]))
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise ValueError(
                f"{path} line {number}: expected a JSON object with 'instruction' and 'skill' ({err})"
            ) from None
    return texts, labels


@dataclass
class SkillClassifier:
    """A skill classifier: multinomial logistic regression on L2-normalised sentence embeddings.

    Attributes:
        skills: The labels it predicts, in the order of :meth:`predict_proba`'s columns.
        model: The sentence-transformers model of the embeddings (None: packaged all-MiniLM-L6-v2).
    """

    skills: list[str]
    model: str | None = None
    _estimator: Any = field(default=None, repr=False)

    @classmethod
    def fit(
        cls, texts: Sequence[str], labels: Sequence[str], *, model: str | None = None, c: float = 8.0
    ) -> SkillClassifier:
        """Fit on labelled instructions (at least two skills, and a few examples of each)."""
        from sklearn.linear_model import LogisticRegression

        from ..filters.embedding import embed

        if len(texts) != len(labels) or not texts:
            raise ValueError("fit needs one label per text, and at least one text")
        counts = Counter(labels)
        if len(counts) < 2:
            raise ValueError(f"fit needs at least two skills, got {sorted(counts)}")
        few = sorted(skill for skill, n in counts.items() if n < 3)
        if few:
            raise ValueError(f"skills with fewer than 3 examples: {', '.join(few)}; add examples of them")
        estimator = LogisticRegression(C=c, max_iter=2000)
        estimator.fit(embed(list(texts), model), list(labels))
        return cls(skills=[str(s) for s in estimator.classes_], model=model, _estimator=estimator)

    @classmethod
    def from_examples(cls, path: str | Path | None = None, *, model: str | None = None) -> SkillClassifier:
        """Fit on a labelled JSONL file; ``None``: hf-synth's examples for its default taxonomy."""
        texts, labels = load_labelled(path or DEFAULT_EXAMPLES)
        return cls.fit(texts, labels, model=model)

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Probabilities, one row per text, one column per skill (see ``skills``)."""
        from ..filters.embedding import embed

        if not texts:
            return np.zeros((0, len(self.skills)), dtype=np.float32)
        return self._estimator.predict_proba(embed(list(texts), self.model))

    def predict(self, texts: Sequence[str]) -> list[str]:
        """The most likely skill of each text."""
        probs = self.predict_proba(texts)
        return [self.skills[i] for i in probs.argmax(axis=1)]

    def evaluate(self, texts: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
        """Accuracy overall and per skill on a labelled set (which must not be the one it was fitted on),
        and the confusions (``gold -> predicted: count``)."""
        predicted = self.predict(texts)
        per_skill: dict[str, list[int]] = {}
        confusions: Counter = Counter()
        for gold, guess in zip(labels, predicted, strict=True):
            per_skill.setdefault(gold, []).append(int(gold == guess))
            if gold != guess:
                confusions[f"{gold} -> {guess}"] += 1
        return {
            "rows": len(labels),
            "accuracy": round(float(np.mean([g == p for g, p in zip(labels, predicted, strict=True)])), 4),
            "per_skill": {s: round(float(np.mean(v)), 4) for s, v in sorted(per_skill.items())},
            "confusions": dict(confusions.most_common()),
        }


@lru_cache(maxsize=4)
def default_skill_classifier(model: str | None = None) -> SkillClassifier:
    """The classifier fitted on hf-synth's labelled examples (cached)."""
    return SkillClassifier.from_examples(model=model)
