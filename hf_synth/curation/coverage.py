"""Skill/topic coverage: classify instructions into a taxonomy by embedding similarity, and report what the
dataset covers and what it misses (to steer the next Self-Instruct round)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from datasets import Dataset

from ..filters.dataset_filters import _texts, add_filter_columns
from ..filters.embedding import embed

DEFAULT_TAXONOMY = Path(__file__).parent / "skills.yaml"


def load_taxonomy(path: str | Path | None = None) -> dict[str, str]:
    """A taxonomy file (YAML ``name: description``); ``None`` gives hf-synth's default (skills.yaml)."""
    path = Path(path) if path else DEFAULT_TAXONOMY
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not data or not all(isinstance(v, str) and v for v in data.values()):
        raise ValueError(f"{path} must map skill names to non-empty descriptions (name: description)")
    return {str(k): v for k, v in data.items()}


def classify_skills(
    dataset: Dataset,
    column: str = "instruction",
    *,
    taxonomy: dict[str, str] | None = None,
    model: str | None = None,
) -> Dataset:
    """Add a ``skill`` column (nearest taxonomy entry by cosine of sentence embeddings) and
    ``scores.skill_similarity``. ``model``: any sentence-transformers model; default packaged MiniLM."""
    taxonomy = taxonomy or load_taxonomy()
    names = list(taxonomy)
    labels = embed([f"{name.replace('_', ' ')}: {desc}" for name, desc in taxonomy.items()], model)
    vectors = embed(_texts(dataset, column), model) if len(dataset) else np.zeros((0, labels.shape[1]))
    sims = vectors @ labels.T
    best = sims.argmax(axis=1) if len(dataset) else np.zeros(0, dtype=int)
    skills = [names[i] for i in best]
    dataset = dataset.remove_columns([c for c in ("skill",) if c in dataset.column_names])
    dataset = dataset.add_column("skill", skills)
    scores = [{"skill_similarity": float(sims[r, i])} for r, i in enumerate(best)]
    return add_filter_columns(dataset, scores, [[] for _ in range(len(dataset))])


def coverage_report(
    dataset: Dataset, taxonomy: dict[str, str] | None = None, under_share: float = 0.5
) -> dict[str, Any]:
    """Counts and shares per skill, the skills with no row (``missing``) and those below ``under_share``
    times an even share (``under_covered``, fewest first), from a dataset with a ``skill`` column."""
    if "skill" not in dataset.column_names:
        raise ValueError("No 'skill' column: run classify_skills (hf-synth report does) first.")
    taxonomy = taxonomy or load_taxonomy()
    counts = Counter(dataset["skill"])
    total = max(len(dataset), 1)
    even = 1 / len(taxonomy)
    rows = {
        name: {"count": counts.get(name, 0), "share": round(counts.get(name, 0) / total, 4)}
        for name in taxonomy
    }
    under = sorted(
        (n for n, r in rows.items() if r["share"] < under_share * even), key=lambda n: rows[n]["count"]
    )
    return {
        "rows": len(dataset),
        "skills": rows,
        "missing": [n for n in taxonomy if not counts.get(n)],
        "under_covered": under,
    }
