"""Paraphrases of instructions or responses: k rewordings per row, near-identical ones rejected."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from datasets import Dataset

from ..answers import parse_yes_no
from ..checkpoint import Checkpointer
from ..configuration import to_dict
from ..engine import Engine, EngineConfig, SamplingParams
from ..filters.dataset_filters import split_filtered
from ..filters.heuristics import content_reasons, hygiene_reasons, refusal_reasons
from ..filters.rouge import rouge_l_f, rouge_tokens
from ..prompts import render_messages
from ..results import StepResult
from ..rows import add_messages, checkpointed_map, fingerprint_rows, journaled, require_columns, row_ids
from .augment_config import ParaphraseConfig
from .step_results import bind_step, paraphrase_result

TEMPLATE_PARAPHRASE = "augment/paraphrase"
TEMPLATE_SAME_TASK = "augment/same_task"
_LABEL = re.compile(r"^\s*[*_]*\s*(?:rewritten|paraphrase|instruction|answer)\s*[*_]*\s*:\s*", re.IGNORECASE)


def clean_paraphrase(text: str, field: str) -> str:
    """Strip a leading label ("Rewritten:") and, for instructions, anything after the first blank line."""
    text = (text or "").replace("\r\n", "\n").strip()
    text = _LABEL.sub("", text, count=1).strip()
    if field == "instruction":
        text = re.split(r"\n\s*\n", text, maxsplit=1)[0].strip()
    if len(text) > 2 and text[0] == text[-1] and text[0] in "\"'`":
        text = text[1:-1].strip()
    return text


def paraphrase(
    dataset: Dataset,
    engine: Engine,
    config: ParaphraseConfig | None = None,
    *,
    checkpointer: Checkpointer | None = None,
    name: str = "paraphrase",
    judge: Engine | EngineConfig | None = None,
    checkpoint_dir: str | Path | None = None,
    overwrite: bool = False,
    source: str | None = None,
) -> StepResult:
    """``config.k`` paraphrases of ``config.target`` per row; returns (kept, rejected) paraphrase rows.

    Each paraphrase row copies its parent's ``instruction``/``input``/``output`` with the field reworded,
    rebuilds ``messages``, and records ``id`` (``<parent>-p<k>``), ``parent_id``, ``strategy``, ``model``,
    ``generation_params`` and ``scores.rouge_l_to_parent``. Rejected (``filter_reasons``): empty or
    too-short rewordings, refusals, and near-identical ones (ROUGE-L >= ``max_rouge_l``). With a ``judge``
    engine, instruction paraphrases it does not call the same task are rejected too (``task_changed``;
    an unparsable verdict is ``judge_unparsable``), and ``scores.same_task`` records its verdict.

    Returns a :class:`~hf_synth.results.StepResult`: ``kept, rejected = paraphrase(...)``, or
    ``paraphrase(...).save(folder)``. ``checkpoint_dir``: the step's checkpoint folder, tied to its
    configuration, model and input (``overwrite`` discards another run's); ``engine`` and ``judge`` may be
    :class:`~hf_synth.engine.EngineConfig` (loaded once the folder is known to fit); ``source`` names the
    input for the card.
    """
    config = config or ParaphraseConfig()
    given_engine = engine
    checkpointer, loaded = bind_step(
        checkpointer,
        checkpoint_dir,
        [engine] if judge is None else [engine, judge],
        lambda ids: {
            "config": to_dict(config),
            "model": ids[0],
            "check_task": judge is not None,
            "judge": ids[1] if len(ids) > 1 and judge is not engine else None,
            "input": fingerprint_rows(dataset),
        },
        overwrite=overwrite,
    )
    engine, judge = loaded[0], (loaded[1] if len(loaded) > 1 else None)
    teacher = engine
    engine = journaled(engine, checkpointer)
    require_columns(dataset, ("instruction", "output"))
    ids = row_ids(dataset)
    requests = Dataset.from_list(
        [
            {
                "id": f"{parent}-p{k}",
                "parent_id": parent,
                "variant": k,
                "original": row[config.target] or "",
                "instruction": row["instruction"] or "",
                "input": row.get("input") or "",
                "output": row["output"] or "",
            }
            for parent, row in zip(ids, dataset, strict=True)
            for k in range(config.k)
        ]
    )

    def _map(batch: dict[str, list]) -> dict[str, list]:
        prompts = [
            render_messages(TEMPLATE_PARAPHRASE, field=config.target, variant=k, text=text)
            for k, text in zip(batch["variant"], batch[config.target], strict=True)
        ]
        outputs = engine.generate(prompts, config.sampling, desc="Paraphrasing")
        return {"raw_completion": [o.text for o in outputs]}

    generated = checkpointed_map(
        requests, _map, checkpointer, name, batch_size=config.checkpoint_every, desc="Paraphrasing"
    )
    params = json.dumps({"paraphrase": config.sampling.to_dict(), "k": config.k, "target": config.target})

    def _finish(row: dict[str, Any]) -> dict[str, Any]:
        original = row["original"]
        new = clean_paraphrase(row["raw_completion"], config.target)
        similarity = rouge_l_f(rouge_tokens(new), rouge_tokens(original)) if new else 0.0
        reasons = (
            content_reasons(new, config.min_words, field="paraphrase")
            or refusal_reasons(new)
            or hygiene_reasons(new, field="paraphrase")
        )
        if not reasons and similarity >= config.max_rouge_l:
            reasons = ["near_identical"]
        return {
            config.target: new,
            "strategy": f"paraphrase:{config.target}",
            "source": "paraphrase",
            "model": engine.model_id,
            "generation_params": params,
            "filter_reasons": reasons,
            "scores": {"rouge_l_to_parent": similarity},
        }

    rows = add_messages(generated.map(_finish, keep_in_memory=True)).remove_columns(["variant"])
    if judge is not None and config.target == "instruction":
        rows = _check_same_task(rows, judge, checkpointer, f"{name}-judge", config.checkpoint_every)
    kept, rejected = split_filtered(rows.remove_columns(["original"]))
    return paraphrase_result(
        kept,
        rejected,
        dataset=dataset,
        engine=teacher,
        judge=judge,
        config=config,
        source=source,
        engine_for_config=given_engine,
    )


def _check_same_task(rows: Dataset, judge: Engine, checkpointer, name: str, batch_size: int) -> Dataset:
    judge = journaled(judge, checkpointer)

    def _ask(batch: dict[str, list]) -> dict[str, list]:
        alive = [i for i, reasons in enumerate(batch["filter_reasons"]) if not reasons]
        prompts = [
            render_messages(
                TEMPLATE_SAME_TASK, original=batch["original"][i], rewritten=batch["instruction"][i]
            )
            for i in alive
        ]
        outputs = judge.generate(
            prompts, SamplingParams(max_new_tokens=4, temperature=0.0), desc="Same task?"
        )
        reasons = [list(r) for r in batch["filter_reasons"]]
        scores = [dict(s) for s in batch["scores"]]
        for i, out in zip(alive, outputs, strict=True):
            verdict = parse_yes_no(out.text)
            scores[i]["same_task"] = verdict
            if verdict is None:
                reasons[i].append("judge_unparsable")
            elif not verdict:
                reasons[i].append("task_changed")
        return {"filter_reasons": reasons, "scores": scores}

    with_original = rows.map(lambda r: {"scores": {**r["scores"], "same_task": None}}, keep_in_memory=True)
    return checkpointed_map(
        with_original, _ask, checkpointer, name, batch_size=batch_size, desc="Checking tasks"
    )
