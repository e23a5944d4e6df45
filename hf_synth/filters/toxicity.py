"""Toxicity scores with a trained classifier: any transformers text-classification model by path or Hub
id, or (offline default) the linear SVM of ``alt-profanity-check``, trained on ~200k human-labelled
comments (Wikipedia Toxic Comments and Twitter data), not a word list."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from datasets import Dataset

from ..rows import as_texts, column_texts
from .dataset_filters import add_filter_columns

#: Labels of common toxicity models that mean "toxic" (compared in lower case).
TOXIC_LABELS = (
    "toxic",
    "toxicity",
    "offensive",
    "hate",
    "hateful",
    "abusive",
    "insult",
    "obscene",
    "label_1",
)


@lru_cache(maxsize=2)
def _pipeline(model: str) -> Any:
    from transformers import pipeline

    return pipeline("text-classification", model=model, top_k=None, truncation=True)


def toxicity_scores(texts: Sequence[str], model: str | None = None, batch_size: int = 32) -> list[float]:
    """Probability-like toxicity in [0, 1] per text (empty text scores 0)."""
    texts = as_texts(texts)
    if model is None:
        from profanity_check import predict_prob

        probs = predict_prob([t or " " for t in texts]) if texts else []
        return [0.0 if not t.strip() else float(p) for t, p in zip(texts, probs, strict=True)]
    results = _pipeline(model)([t or " " for t in texts], batch_size=batch_size)
    scores = []
    for text, labels in zip(texts, results, strict=True):
        toxic = [d["score"] for d in labels if any(re.fullmatch(k, d["label"].lower()) for k in TOXIC_LABELS)]
        if not toxic:
            raise ValueError(
                f"Model {model} has labels {[d['label'] for d in labels]}, none of them a toxicity label "
                f"({', '.join(TOXIC_LABELS)}); use a toxicity classifier."
            )
        scores.append(0.0 if not text.strip() else float(max(toxic)))
    return scores


def toxicity_filter(
    dataset: Dataset,
    columns: Sequence[str] = ("instruction", "output"),
    *,
    threshold: float = 0.5,
    model: str | None = None,
) -> Dataset:
    """Score each of ``columns`` (``scores.toxicity_<column>``) and drop rows at or above ``threshold``
    (reason ``toxic:<column>``). The default 0.5 suits the default classifier: on our labelled sentences
    (``bench/eval_toxicity.py``) it flags no benign sentence (highest benign score 0.44) and 13 of 15
    toxic ones. Missing columns are an error naming the available ones."""
    columns = [columns] if isinstance(columns, str) else list(columns)
    per_column = {c: toxicity_scores(column_texts(dataset, c), model) for c in columns}
    scores = [{f"toxicity_{c}": per_column[c][i] for c in columns} for i in range(len(dataset))]
    reasons = [[f"toxic:{c}" for c in columns if per_column[c][i] >= threshold] for i in range(len(dataset))]
    return add_filter_columns(dataset, scores, reasons)
