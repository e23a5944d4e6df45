"""Negative examples: deliberately flawed answers, emitted only as preference pairs (never as SFT rows)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from datasets import Dataset

from ..checkpoint import Checkpointer
from ..configuration import to_dict
from ..engine import Engine
from ..filters.heuristics import hygiene_reasons, normalized_words
from ..prompts import render_messages
from ..results import StepResult
from ..rows import checkpointed_map, fingerprint_rows, require_columns, row_ids, user_content
from .augment_config import NegativeConfig
from .step_results import bind_teacher, negatives_result

TEMPLATE_NEGATIVE = "augment/negative"


def preference_pairs(
    dataset: Dataset,
    engine: Engine,
    config: NegativeConfig | None = None,
    *,
    checkpointer: Checkpointer | None = None,
    name: str = "negatives",
    checkpoint_dir: str | Path | None = None,
    overwrite: bool = False,
    source: str | None = None,
) -> StepResult:
    """For each row with an output, ask for a deliberately flawed answer of one kind and return
    (pairs, rejected). Pairs are TRL's DPO format: ``prompt`` (instruction + input), ``chosen`` (the row's
    output), ``rejected`` (the flawed answer), with ``negative_kind``, ``parent_id``, ``strategy``,
    ``model`` and ``generation_params``. There is deliberately no ``messages`` column, and
    ``scripts/sft.py`` refuses data with ``chosen``/``rejected``. Rejected: empty flawed answers and
    ones identical to the chosen answer.

    Returns a :class:`~hf_synth.results.StepResult` (``pairs, rejected = preference_pairs(...)``, or
    ``.save(folder)``); ``checkpoint_dir``, ``overwrite``, ``source`` and an ``engine`` given as an
    :class:`~hf_synth.engine.EngineConfig` as in :func:`~hf_synth.augment.paraphrase`.
    """
    config = config or NegativeConfig()
    given_engine = engine
    checkpointer, teacher, engine = bind_teacher(
        checkpointer,
        checkpoint_dir,
        engine,
        lambda ids: {"config": to_dict(config), "model": ids[0], "input": fingerprint_rows(dataset)},
        overwrite=overwrite,
    )
    require_columns(dataset, ("instruction", "output"))
    ids = row_ids(dataset)
    rows = []
    for parent, row in zip(ids, dataset, strict=True):
        if not (row["output"] or "").strip():
            continue
        kind = random.Random(f"{config.seed}-{parent}").choice(config.kinds)
        rows.append(
            {
                "id": f"{parent}-neg",
                "parent_id": parent,
                "negative_kind": kind,
                "prompt": user_content(row["instruction"] or "", row.get("input") or ""),
                "chosen": row["output"],
            }
        )
    if not rows:
        raise ValueError("No row has an output to contrast a flawed answer with.")
    requests = Dataset.from_list(rows)

    def _map(batch: dict[str, list]) -> dict[str, list]:
        prompts = [
            render_messages(TEMPLATE_NEGATIVE, kind=kind, instruction=prompt)
            for kind, prompt in zip(batch["negative_kind"], batch["prompt"], strict=True)
        ]
        outputs = engine.generate(prompts, config.sampling, desc="Flawed answers")
        return {"rejected": [o.text.strip() for o in outputs]}

    pairs = checkpointed_map(
        requests, _map, checkpointer, name, batch_size=config.checkpoint_every, desc="Writing flawed answers"
    )
    params = json.dumps({"negative": config.sampling.to_dict(), "kinds": config.kinds, "seed": config.seed})

    def _finish(row: dict[str, Any]) -> dict[str, Any]:
        reasons = []
        if not row["rejected"]:
            reasons.append("empty_rejected")
        elif normalized_words(row["rejected"]) == normalized_words(row["chosen"]):
            reasons.append("rejected_equals_chosen")
        else:  # flawed on purpose, but in its content: text broken as text teaches nothing
            reasons += hygiene_reasons(row["rejected"], field="rejected")
        return {
            "strategy": "negative",
            "model": engine.model_id,
            "generation_params": params,
            "filter_reasons": reasons,
        }

    pairs = pairs.map(_finish, keep_in_memory=True)
    kept = pairs.filter(lambda r: not r, input_columns="filter_reasons", keep_in_memory=True)
    dropped = pairs.filter(lambda r: bool(r), input_columns="filter_reasons", keep_in_memory=True)
    return negatives_result(
        kept.remove_columns("filter_reasons"),
        dropped,
        rows=len(dataset),
        engine=teacher,
        config=config,
        source=source,
        engine_for_config=given_engine,
    )
