"""Filters by name, for YAML configs (``filters: [{name: rouge_novelty, threshold: 0.7}, ...]``)."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from datasets import Dataset

from .dataset_filters import complexity_filter, length_filter, minhash_dedup_filter, rouge_novelty_filter
from .embedding import embedding_dedup_filter
from .toxicity import toxicity_filter


def judge_with_model(
    dataset: Dataset,
    *,
    model: str | None = None,
    batch_size: int = 16,
    instruction_column: str = "instruction",
    response_column: str = "output",
    min_quality: float = 0.0,
    require_adherence: bool = True,
    drop_unparsable: bool = False,
) -> Dataset:
    """:func:`~hf_synth.filters.judge.judge_filter` with the judge loaded by name (default: embedded model)."""
    from ..engine import EngineConfig, GenerationEngine
    from .judge import judge_filter

    engine = GenerationEngine.from_config(EngineConfig(model=model, batch_size=batch_size))
    return judge_filter(
        dataset,
        engine,
        instruction_column=instruction_column,
        response_column=response_column,
        min_quality=min_quality,
        require_adherence=require_adherence,
        drop_unparsable=drop_unparsable,
    )


FILTERS = {
    "rouge_novelty": rouge_novelty_filter,
    "minhash_dedup": minhash_dedup_filter,
    "embedding_dedup": embedding_dedup_filter,
    "length": length_filter,
    "complexity": complexity_filter,
    "toxicity": toxicity_filter,
    "judge": judge_with_model,
}


def run_filters(dataset: Dataset, specs: Sequence[dict[str, Any]]) -> Dataset:
    """Apply filters in order from specs such as ``{"name": "length", "column": "output", "max_words": 400}``.

    Unknown filter names and unknown parameters raise ``ValueError`` listing the valid ones.
    """
    for position, spec in enumerate(specs):
        if not isinstance(spec, dict) or "name" not in spec:
            raise ValueError(f"filters[{position}] needs a 'name' (one of {', '.join(FILTERS)})")
        params = {k: v for k, v in spec.items() if k != "name"}
        function = FILTERS.get(spec["name"])
        if function is None:
            raise ValueError(
                f"Unknown filter {spec['name']!r} in filters[{position}]; valid: {', '.join(FILTERS)}"
            )
        valid = [p for p in inspect.signature(function).parameters if p not in ("dataset", "tokenizer")]
        unknown = sorted(set(params) - set(valid))
        if unknown:
            raise ValueError(
                f"Unknown parameter(s) {', '.join(unknown)} for filter {spec['name']!r}; valid: {', '.join(valid)}"
            )
        dataset = function(dataset, **params)
    return dataset
