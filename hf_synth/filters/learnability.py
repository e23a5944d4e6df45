"""Learnability-driven selection: keep the rows the current student gets most wrong.

Each instruction (with its input) is answered greedily by the student and by the teacher (or, without a
teacher engine, the row's own output stands for the teacher's answer). The *gap* of a row is
``1 - ROUGE-L F(student answer, teacher answer)``: 0 when the student already says what the teacher says,
1 when they share nothing. A floor on the teacher's own quality keeps junk from winning: an empty or
refusing teacher answer has quality 0; with a teacher engine and a reference output, the quality is the
teacher answer's ROUGE-L F to that reference; otherwise 1. Among rows at or above the floor, the ``keep``
rows (or the ``keep_fraction``) with the largest gap are kept (ties: earlier rows first).

Scores: ``learnability_gap``, ``learnability_student_rouge_l``, ``learnability_teacher_quality``.
Reasons: ``teacher_below_quality_floor``, ``student_already_answers`` (not among the largest gaps).
"""

from __future__ import annotations

import math
from typing import Any

from datasets import Dataset

from ..checkpoint import Checkpointer
from ..engine import Engine, SamplingParams
from ..rows import column_texts, journaled, user_content
from .dataset_filters import add_filter_columns
from .heuristics import refusal_reasons
from .rouge import rouge_l_f, rouge_tokens


def learnability_filter(
    dataset: Dataset,
    student: Engine,
    teacher: Engine | None = None,
    *,
    instruction_column: str = "instruction",
    input_column: str = "input",
    output_column: str = "output",
    keep: int | None = None,
    keep_fraction: float = 0.5,
    min_teacher_quality: float = 0.1,
    max_new_tokens: int = 256,
    checkpointer: Checkpointer | None = None,
    name: str = "learnability",
) -> Dataset:
    """Score every row's student-teacher gap and keep the ``keep`` rows (default: ``keep_fraction`` of the
    rows above the teacher-quality floor, rounded up) the student gets most wrong. See the module docstring."""
    if keep is not None and keep < 0:
        raise ValueError(f"keep must be >= 0 or None, got {keep}")
    if not 0 <= keep_fraction <= 1:
        raise ValueError(f"keep_fraction must be in [0, 1], got {keep_fraction}")
    instructions = column_texts(dataset, instruction_column)
    inputs = (
        column_texts(dataset, input_column) if input_column in dataset.column_names else [""] * len(dataset)
    )
    references = column_texts(dataset, output_column) if output_column in dataset.column_names else None
    if teacher is None and references is None:
        raise ValueError(
            f"learnability needs a teacher engine or an {output_column!r} column standing for the teacher's "
            "answers; pass teacher_model=... or output_column=NAME."
        )
    prompts = [user_content(i, x, skip_blank_input=True) for i, x in zip(instructions, inputs, strict=True)]
    sampling = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0)
    student_answers = [
        o.text.strip()
        for o in journaled(student, checkpointer).generate(prompts, sampling, desc="Student answers")
    ]
    if teacher is not None:
        teacher_answers = [
            o.text.strip()
            for o in journaled(teacher, checkpointer).generate(prompts, sampling, desc="Teacher answers")
        ]
    else:
        teacher_answers = [t.strip() for t in references]
    scores: list[dict[str, Any]] = []
    eligible: list[int] = []
    for i, (mine, theirs) in enumerate(zip(student_answers, teacher_answers, strict=True)):
        if not theirs or refusal_reasons(theirs):
            quality = 0.0
        elif teacher is not None and references is not None and references[i].strip():
            quality = rouge_l_f(rouge_tokens(theirs), rouge_tokens(references[i]))
        else:
            quality = 1.0
        agreement = rouge_l_f(rouge_tokens(mine), rouge_tokens(theirs))
        scores.append(
            {
                "learnability_gap": round(1.0 - agreement, 6),
                "learnability_student_rouge_l": round(agreement, 6),
                "learnability_teacher_quality": round(quality, 6),
            }
        )
        if quality >= min_teacher_quality:
            eligible.append(i)
    budget = keep if keep is not None else math.ceil(keep_fraction * len(eligible))
    ranked = sorted(eligible, key=lambda i: (-scores[i]["learnability_gap"], i))
    chosen = set(ranked[:budget])
    reasons = [
        []
        if i in chosen
        else ["student_already_answers"]
        if scores[i]["learnability_teacher_quality"] >= min_teacher_quality
        else ["teacher_below_quality_floor"]
        for i in range(len(dataset))
    ]
    return add_filter_columns(dataset, scores, reasons)


def learnability_with_models(
    dataset: Dataset,
    student_model: str | None = None,
    teacher_model: str | None = None,
    *,
    instruction_column: str = "instruction",
    input_column: str = "input",
    output_column: str = "output",
    keep: int | None = None,
    keep_fraction: float = 0.5,
    min_teacher_quality: float = 0.1,
    max_new_tokens: int = 256,
    batch_size: int | None = None,
    checkpointer: Checkpointer | None = None,
    name: str = "learnability",
) -> Dataset:
    """:func:`learnability_filter` with the engines loaded by name: ``student_model`` (required: a local
    folder or Hub id, e.g. the student a ``refine`` round trained), ``teacher_model`` (None: the rows' own
    ``output`` stands for the teacher's answers)."""
    if not student_model:
        raise ValueError("learnability needs student_model: the folder or Hub id of the student to test.")
    from ..engine import EngineConfig, load_engine

    student = load_engine(EngineConfig(model=student_model, batch_size=batch_size))
    teacher = load_engine(EngineConfig(model=teacher_model, batch_size=batch_size)) if teacher_model else None
    return learnability_filter(
        dataset,
        student,
        teacher,
        instruction_column=instruction_column,
        input_column=input_column,
        output_column=output_column,
        keep=keep,
        keep_fraction=keep_fraction,
        min_teacher_quality=min_teacher_quality,
        max_new_tokens=max_new_tokens,
        checkpointer=checkpointer,
        name=name,
    )
