"""Small helpers shared by the pipelines for building and mapping datasets."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from datasets import Dataset, Features

from .checkpoint import Checkpointer


def empty_dataset(features: Features) -> Dataset:
    """A dataset with no rows but the given columns and types (so it concatenates with real ones)."""
    return Dataset.from_dict({name: [] for name in features}, features=features)


def fingerprint_rows(rows: Iterable[dict]) -> str:
    """A content hash of rows, used to tie checkpoints to their input."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False, default=str).encode())
    return digest.hexdigest()


def fresh_fingerprint() -> str:
    """A new datasets fingerprint, for maps whose function closes over a model (datasets cannot hash it).
    Results of those maps live in memory or in our checkpoints, never in datasets' cache."""
    return f"hf-synth-{uuid.uuid4().hex}"


def checkpointed_map(
    dataset: Dataset,
    function: Callable[[dict[str, list]], dict[str, Any]],
    checkpointer: Checkpointer | None,
    name: str,
    *,
    batch_size: int,
    desc: str,
    features: Features | None = None,
) -> Dataset:
    """A batched ``Dataset.map`` that keeps each finished chunk on disk when ``checkpointer`` is enabled.

    ``features`` fixes the output types, so chunks whose new columns happen to be all null still
    concatenate with the others.
    """
    kwargs = {
        "batched": True,
        "batch_size": batch_size,
        "desc": desc,
        "new_fingerprint": fresh_fingerprint(),
        "features": features,
    }
    if checkpointer is not None and checkpointer.enabled:
        return checkpointer.map(dataset, function, name, **kwargs)
    return dataset.map(function, keep_in_memory=True, **kwargs)
