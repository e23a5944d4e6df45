"""Filters by name, for YAML configs (``filters: [{name: rouge_novelty, threshold: 0.7}, ...]``)."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

from datasets import Dataset

from ..checkpoint import Checkpointer
from ..engine.model_source import MODEL_PARAMETERS, check_model_source
from .dataset_filters import complexity_filter, length_filter, minhash_dedup_filter, rouge_novelty_filter
from .decontaminate import check_evaluation_sources, decontaminate_filter
from .embedding import embedding_dedup_filter
from .learnability import learnability_with_models
from .toxicity import toxicity_filter


def judge_with_model(
    dataset: Dataset,
    *,
    model: str | None = None,
    batch_size: int | None = None,
    instruction_column: str = "instruction",
    response_column: str = "output",
    min_quality: float = 0.0,
    require_adherence: bool = True,
    drop_unparsable: bool = False,
    checkpointer: Checkpointer | None = None,
    name: str = "judge",
) -> Dataset:
    """:func:`~hf_synth.filters.judge.judge_filter` with the judge loaded by name (default: embedded model)."""
    from ..engine import EngineConfig, load_engine
    from .judge import judge_filter

    engine = load_engine(EngineConfig(model=model, batch_size=batch_size))
    return judge_filter(
        dataset,
        engine,
        instruction_column=instruction_column,
        response_column=response_column,
        min_quality=min_quality,
        require_adherence=require_adherence,
        drop_unparsable=drop_unparsable,
        checkpointer=checkpointer,
        name=name,
    )


FILTERS = {
    "rouge_novelty": rouge_novelty_filter,
    "minhash_dedup": minhash_dedup_filter,
    "embedding_dedup": embedding_dedup_filter,
    "length": length_filter,
    "complexity": complexity_filter,
    "toxicity": toxicity_filter,
    "judge": judge_with_model,
    "decontaminate": decontaminate_filter,
    "learnability": learnability_with_models,
}


def resolve_filters(specs: Sequence[dict[str, Any]]) -> list[tuple[str, Any, dict[str, Any]]]:
    """Check filter specs (``{"name": ..., **params}``) and return (name, function, params) for each.

    Unknown filter names and unknown parameters raise ``ValueError`` listing the valid ones.
    """
    resolved = []
    for position, spec in enumerate(specs):
        if not isinstance(spec, dict) or "name" not in spec:
            raise ValueError(f"filters[{position}] needs a 'name' (one of {', '.join(FILTERS)})")
        params = {k: v for k, v in spec.items() if k != "name"}
        function = FILTERS.get(spec["name"])
        if function is None:
            raise ValueError(
                f"Unknown filter {spec['name']!r} in filters[{position}]; valid: {', '.join(FILTERS)}"
            )
        internal = ("dataset", "tokenizer", "checkpointer", "name", "decontaminator")
        valid = [p for p in inspect.signature(function).parameters if p not in internal]
        unknown = sorted(set(params) - set(valid))
        if unknown:
            raise ValueError(
                f"Unknown parameter(s) {', '.join(unknown)} for filter {spec['name']!r}; valid: {', '.join(valid)}"
            )
        for key in MODEL_PARAMETERS:  # a model that cannot be had fails here, before anything runs
            if isinstance(params.get(key), str):
                check_model_source(params[key])
        if spec["name"] == "decontaminate" and params.get("eval_sets"):  # so does an evaluation set
            check_evaluation_sources(params["eval_sets"])
        resolved.append((spec["name"], function, params))
    return resolved


def run_filters(
    dataset: Dataset, specs: Sequence[dict[str, Any]], *, checkpointer: Checkpointer | None = None
) -> Dataset:
    """Apply filters in order from specs such as ``{"name": "length", "column": "output", "max_words": 400}``
    (checked by :func:`resolve_filters` first). Filters that call a model (``judge``) keep their finished
    chunks in ``checkpointer``."""
    for position, (name, function, params) in enumerate(resolve_filters(specs)):
        if "checkpointer" in inspect.signature(function).parameters:
            params = {**params, "checkpointer": checkpointer, "name": f"filter-{position:02d}-{name}"}
        dataset = function(dataset, **params)
    return dataset
