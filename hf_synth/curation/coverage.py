"""Skill/topic coverage: classify instructions into skills (a classifier fitted on labelled examples, or the
nearest description of a user taxonomy), and report what the dataset covers and what it misses (to steer
the next Self-Instruct round)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from datasets import Dataset

from ..filters.dataset_filters import add_filter_columns
from ..filters.embedding import embed
from ..rows import column_texts
from .skill_classifier import SkillClassifier, default_skill_classifier

DEFAULT_TAXONOMY = Path(__file__).parent / "skills.yaml"
#: The sentence-embedding model used when none is named (packaged with hf-synth).
DEFAULT_EMBEDDING_NAME = "all-MiniLM-L6-v2"


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
    examples: str | Path | None = None,
    classifier: SkillClassifier | None = None,
) -> Dataset:
    """Add a ``skill`` column and a confidence score.

    With the default taxonomy (or labelled ``examples``, a JSONL file of ``instruction``/``skill``, or a
    fitted ``classifier``), a :class:`~hf_synth.curation.skill_classifier.SkillClassifier` decides
    (``scores.skill_confidence``, its probability). With a user ``taxonomy`` and no examples, each row gets
    the nearest description by cosine of sentence embeddings (``scores.skill_similarity``). ``model``: any
    sentence-transformers model; default packaged MiniLM. :func:`skill_labeller` names, in words, what
    labelled the skills for the same arguments."""
    if classifier is None and _uses_classifier(taxonomy, examples):
        classifier = (
            SkillClassifier.from_examples(examples, model=model)
            if examples is not None
            else default_skill_classifier(model)
        )
    texts = column_texts(dataset, column)
    dataset = dataset.remove_columns([c for c in ("skill",) if c in dataset.column_names])
    if classifier is not None:
        probs = classifier.predict_proba(texts)
        best = probs.argmax(axis=1) if len(dataset) else np.zeros(0, dtype=int)
        dataset = dataset.add_column("skill", [classifier.skills[i] for i in best])
        scores = [{"skill_confidence": float(probs[r, i])} for r, i in enumerate(best)]
        return add_filter_columns(dataset, scores, [[] for _ in range(len(dataset))])
    names = list(taxonomy)
    labels = embed([f"{name.replace('_', ' ')}: {desc}" for name, desc in taxonomy.items()], model)
    vectors = embed(texts, model) if len(dataset) else np.zeros((0, labels.shape[1]))
    sims = vectors @ labels.T
    best = sims.argmax(axis=1) if len(dataset) else np.zeros(0, dtype=int)
    dataset = dataset.add_column("skill", [names[i] for i in best])
    scores = [{"skill_similarity": float(sims[r, i])} for r, i in enumerate(best)]
    return add_filter_columns(dataset, scores, [[] for _ in range(len(dataset))])


def _uses_classifier(taxonomy: dict[str, str] | None, examples: str | Path | None) -> bool:
    return examples is not None or taxonomy is None


def skill_labeller(
    taxonomy: dict[str, str] | None = None,
    model: str | None = None,
    examples: str | Path | None = None,
    classifier: SkillClassifier | None = None,
) -> str:
    """What :func:`classify_skills` with these arguments labels the skills with, in words (reports and
    cards say it next to the counts)."""
    if classifier is not None or _uses_classifier(taxonomy, examples):
        embeddings = (classifier.model if classifier is not None else model) or DEFAULT_EMBEDDING_NAME
        fitted = (
            "the given classifier's labelled examples"
            if classifier is not None
            else f"the labelled examples in {Path(examples).name}"
            if examples is not None
            else "hf-synth's labelled examples of its taxonomy"
        )
        return f"a logistic-regression classifier on {embeddings} sentence embeddings, fitted on {fitted}"
    return f"the nearest skill description by cosine of {model or DEFAULT_EMBEDDING_NAME} sentence embeddings"


def _labeller_of(dataset: Dataset) -> str:
    """What labelled the skills of ``dataset``, read from the score classify_skills recorded in the rows."""
    first = dataset[0]["scores"] if len(dataset) and "scores" in dataset.column_names else None
    if isinstance(first, dict) and first.get("skill_confidence") is not None:
        return "a logistic-regression classifier on sentence embeddings"
    if isinstance(first, dict) and first.get("skill_similarity") is not None:
        return "the nearest skill description by cosine of sentence embeddings"
    return "the rows' own 'skill' column"


def coverage_report(
    dataset: Dataset,
    taxonomy: dict[str, str] | None = None,
    under_share: float = 0.5,
    labeller: str | None = None,
) -> dict[str, Any]:
    """Counts and shares per skill, the skills with no row (``missing``) and those below ``under_share``
    times an even share (``under_covered``, fewest first), from a dataset with a ``skill`` column.

    ``labeller`` says what labelled the skills (:func:`skill_labeller`); without it, what the rows' scores
    show (``skill_confidence``: the classifier; ``skill_similarity``: the nearest description)."""
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
        "labeller": labeller or _labeller_of(dataset),
        "skills": rows,
        "missing": [n for n in taxonomy if not counts.get(n)],
        "under_covered": under,
    }
