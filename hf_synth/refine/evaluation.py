"""How refine scores a student: the evaluation tasks, their prompts, ROUGE-L per skill, and the skills the
next round is steered toward."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from datasets import Dataset

from ..filters.rouge import rouge_l_f, rouge_tokens
from ..rows import user_content


def eval_rows(dataset: Dataset) -> list[dict[str, str]]:
    """Evaluation tasks as ``{instruction, input, output}``: from those columns, or a Self-Instruct style
    ``instances`` list (its first instance). Rows without an instruction or a reference output are errors."""
    from ..self_instruct import SelfInstructConfig, prepare_seed_pool

    pool = prepare_seed_pool(dataset, SelfInstructConfig())
    rows = [
        {"instruction": r["instruction"], "input": r["input"] or "", "output": r["output"] or ""}
        for r in pool
    ]
    missing = sum(not r["output"].strip() for r in rows)
    if missing:
        raise ValueError(
            f"{missing} of {len(rows)} evaluation rows have no reference output (an 'output' column or "
            "'instances' with outputs); the student's answers are scored against it."
        )
    return rows


def eval_prompt(row: dict[str, str]) -> str:
    """The user message of an evaluation task: the instruction, and its input after a blank line."""
    return user_content(row["instruction"], row["input"], skip_blank_input=True)


def score_answers(answers: Sequence[str], rows: Sequence[dict], skills: Sequence[str]) -> dict[str, Any]:
    """ROUGE-L F of each answer against its reference: the mean overall and per skill (the measure the
    Self-Instruct paper reports on SuperNI)."""
    scores = [
        rouge_l_f(rouge_tokens(a), rouge_tokens(r["output"])) for a, r in zip(answers, rows, strict=True)
    ]
    per_skill: dict[str, list[float]] = {}
    for skill, score in zip(skills, scores, strict=True):
        per_skill.setdefault(skill, []).append(score)
    return {
        "rouge_l": round(sum(scores) / len(scores), 4) if scores else 0.0,
        "per_skill": {s: round(sum(v) / len(v), 4) for s, v in sorted(per_skill.items())},
        "rows_per_skill": {s: len(v) for s, v in sorted(per_skill.items())},
        "scores": scores,
    }


def choose_focus(
    previous: dict[str, float] | None, current: dict[str, float], k: int, allowed
) -> list[tuple[str, str]]:
    """The ``k`` skills to steer the next round toward, with the reason for each: skills whose score fell
    since the previous evaluation first (largest fall first), then the lowest scores."""
    fell = sorted(
        (
            (previous[s] - v, s)
            for s, v in current.items()
            if previous and s in previous and v < previous[s] - 1e-9
        ),
        reverse=True,
    )
    chosen = [
        (s, f"ROUGE-L fell from {previous[s]:.3f} to {current[s]:.3f}") for _, s in fell if s in allowed
    ]
    for skill, value in sorted(current.items(), key=lambda kv: kv[1]):
        if skill in allowed and skill not in {c for c, _ in chosen}:
            chosen.append((skill, f"among the lowest ROUGE-L ({value:.3f})"))
    return chosen[:k]
