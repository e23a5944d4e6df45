"""LLM-as-judge scores of responses: instruction adherence (Yes/No) and overall quality (1-5), each with
the judge's one-sentence rationale. Unparsable verdicts are marked (``judge_parsed``), never turned into a
silent pass or a silent drop."""

from __future__ import annotations

import re
from typing import Any

from datasets import Dataset

from ..answers import split_yes_no
from ..checkpoint import Checkpointer
from ..engine import Engine, SamplingParams
from ..prompts import render_messages
from ..rows import checkpointed_map, column_texts, journaled
from .dataset_filters import add_filter_columns

TEMPLATE_ADHERENCE = "judge/adherence"
TEMPLATE_QUALITY = "judge/quality"

_RATING = re.compile(
    r"^[\s*_\[(\"']*(\d+(?:[.,]\d+)?)(?:\s*(?:/|out of)\s*(\d+(?:\.\d+)?))?[\s*_\])\"'.,:;-]*(.*)$", re.DOTALL
)


def parse_adherence(text: str) -> tuple[bool | None, str]:
    """("Yes. It lists three tips." -> (True, "It lists three tips.")); no leading Yes/No -> (None, text)."""
    return split_yes_no(text or "")


def parse_rating(text: str, scale: int = 5) -> tuple[float | None, str]:
    """("4 - clear but short" -> (4.0, "clear but short")); "8/10" is rescaled to the 1-5 scale; values
    outside 1..scale after rescaling give (None, text)."""
    match = _RATING.match(text or "")
    if not match:
        return None, (text or "").strip()
    value = float(match.group(1).replace(",", "."))
    if match.group(2):
        denominator = float(match.group(2))
        if denominator <= 0:
            return None, (text or "").strip()
        value = value / denominator * scale
    if not 1 <= value <= scale:
        return None, (text or "").strip()
    return value, match.group(3).strip()


def judge_filter(
    dataset: Dataset,
    engine: Engine,
    *,
    instruction_column: str = "instruction",
    response_column: str = "output",
    min_quality: float = 0.0,
    require_adherence: bool = True,
    drop_unparsable: bool = False,
    sampling: SamplingParams | None = None,
    checkpointer: Checkpointer | None = None,
    name: str = "judge",
    batch_size: int = 64,
) -> Dataset:
    """Ask ``engine`` to judge every (instruction, response) pair.

    Adds ``scores.judge_adheres`` (bool or null), ``judge_quality`` (1-5 or null), ``judge_adherence_reason``,
    ``judge_quality_reason``, ``judge_parsed`` and ``judge_model``. Reasons: ``judge_not_adherent`` (with
    ``require_adherence``), ``judge_low_quality`` (below ``min_quality``), ``judge_unparsable`` only with
    ``drop_unparsable`` (otherwise unparsable rows are kept and marked ``judge_parsed: false``).
    With a ``checkpointer``, finished chunks of judge replies are kept on disk and reused by a re-run.
    """
    engine = journaled(engine, checkpointer)
    sampling = sampling or SamplingParams(max_new_tokens=48, temperature=0.0)
    for column in (instruction_column, response_column):
        column_texts(dataset, column)  # a missing column is refused by name before the judge is asked

    def _ask(batch: dict[str, list]) -> dict[str, list]:
        prompts = []
        for instruction, response in zip(batch[instruction_column], batch[response_column], strict=True):
            variables = {"instruction": instruction or "", "response": response or ""}
            prompts.append(render_messages(TEMPLATE_ADHERENCE, **variables))
            prompts.append(render_messages(TEMPLATE_QUALITY, **variables))
        outputs = engine.generate(prompts, sampling, desc="Judging responses")
        return {
            "_judge_adherence": [o.text for o in outputs[0::2]],
            "_judge_quality": [o.text for o in outputs[1::2]],
        }

    replies = checkpointed_map(
        dataset.select_columns([instruction_column, response_column]),
        _ask,
        checkpointer,
        name,
        batch_size=batch_size,
        desc="Judging responses",
    )
    scores: list[dict[str, Any]] = []
    reasons: list[list[str]] = []
    for i in range(len(dataset)):
        adheres, adherence_reason = parse_adherence(replies[i]["_judge_adherence"])
        quality, quality_reason = parse_rating(replies[i]["_judge_quality"])
        parsed = adheres is not None and quality is not None
        scores.append(
            {
                "judge_adheres": adheres,
                "judge_quality": quality,
                "judge_adherence_reason": adherence_reason,
                "judge_quality_reason": quality_reason,
                "judge_parsed": parsed,
                "judge_model": engine.model_id,
            }
        )
        row = []
        if require_adherence and adheres is False:
            row.append("judge_not_adherent")
        if quality is not None and quality < min_quality:
            row.append("judge_low_quality")
        if drop_unparsable and not parsed:
            row.append("judge_unparsable")
        reasons.append(row)
    return add_filter_columns(dataset, scores, reasons)
