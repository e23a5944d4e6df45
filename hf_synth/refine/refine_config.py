"""Configuration of the closed loop (generate -> fine-tune -> evaluate -> target), beside :mod:`.refine`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..configuration import option
from ..self_instruct.self_instruct_config import SelfInstructConfig


def _generation() -> SelfInstructConfig:
    return SelfInstructConfig(num_instructions=100, max_rounds=30)


@dataclass
class RefineConfig:
    """Every setting of the loop: generation, curation, the student's fine-tuning and its evaluation.

    Args:
        rounds: Generate -> fine-tune -> evaluate rounds after the round-0 evaluation of the untrained
            student.
        instructions_per_round: New kept instructions each round adds (Self-Instruct's target per round).
        patience: Stop when the overall evaluation ROUGE-L has not beaten the best so far for this many
            rounds in a row (the report says so).
        student_model: Local folder or Hub id of the student; None fine-tunes the teacher's own base model.
        learning_rate: Learning rate of the student's fine-tuning (TRL SFTTrainer).
        num_train_epochs: Epochs over the accumulated data each round; the student is trained from its
            base weights every round, on everything kept so far.
        max_steps: Stop fine-tuning after this many optimizer steps (-1: run the epochs).
        train_batch_size: Sequences per optimizer step.
        max_length: Token limit of a training sequence.
        use_lora: Train LoRA adapters (peft) instead of all weights; they are merged before evaluation.
        lora_r: LoRA rank.
        eval_max_new_tokens: Token limit of the student's answers to the evaluation tasks (greedy).
        overlap_threshold: ROUGE-L F at or above which an evaluation instruction counts as also being in
            the seeds (the run is refused) or in generated data (the generated row is dropped before
            training, and counted in the report).
        focus_k: How many weak skills the next round's generation is steered toward (0: no steering).
        learnability: Select each round's rows by what the current student gets wrong: generate
            ``learnability_candidates`` times ``instructions_per_round`` candidates, answer each (greedy,
            ``eval_max_new_tokens``) with the current student (round 1: the untrained one) and with the
            teacher, and keep the ``instructions_per_round`` with the largest gap, 1 - ROUGE-L F of the two
            answers (the ``learnability`` filter step); the scores land in each row's ``scores``.
        learnability_candidates: Candidates generated per kept row when ``learnability`` is on (>= 1).
        learnability_min_teacher_quality: Floor on the teacher's own answer (ROUGE-L F to the row's
            reference output; 0 when empty or a refusal): rows below it are never kept.
        filters: Curation applied to each round's new rows, as in ``hf-synth filter`` (a list of
            ``{name: ..., ...}`` specs); empty: Self-Instruct's own filters only.
        generation: Self-Instruct settings of each round (its num_instructions and focus_skills are set by
            the loop).
        seed: Seed of generation (round k uses seed + k) and of fine-tuning.
    """

    rounds: int = option(3)
    instructions_per_round: int = option(100)
    patience: int = option(1)
    student_model: str | None = option(None)
    learning_rate: float = option(5e-5)
    num_train_epochs: float = option(2.0)
    max_steps: int = option(-1)
    train_batch_size: int = option(8)
    max_length: int = 512
    use_lora: bool = option(False)
    lora_r: int = 16
    eval_max_new_tokens: int = option(128)
    overlap_threshold: float = 0.7
    focus_k: int = option(3)
    learnability: bool = option(False)
    learnability_candidates: float = option(2.0)
    learnability_min_teacher_quality: float = option(0.1)
    filters: list[dict[str, Any]] = field(default_factory=list)
    generation: SelfInstructConfig = field(default_factory=_generation)
    seed: int = option(0)

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")
        if self.instructions_per_round < 1:
            raise ValueError(f"instructions_per_round must be >= 1, got {self.instructions_per_round}")
        if self.patience < 1:
            raise ValueError(f"patience must be >= 1, got {self.patience}")
        if not 0 < self.overlap_threshold <= 1:
            raise ValueError(f"overlap_threshold must be in (0, 1], got {self.overlap_threshold}")
        if self.learnability_candidates < 1:
            raise ValueError(
                f"learnability_candidates must be >= 1 (candidates generated per kept row), got "
                f"{self.learnability_candidates}"
            )
        if not 0 <= self.learnability_min_teacher_quality <= 1:
            raise ValueError(
                "learnability_min_teacher_quality must be a ROUGE-L F in [0, 1], got "
                f"{self.learnability_min_teacher_quality}"
            )
        if self.focus_k < 0 or self.train_batch_size < 1 or self.eval_max_new_tokens < 1:
            raise ValueError("focus_k must be >= 0, train_batch_size and eval_max_new_tokens >= 1")
