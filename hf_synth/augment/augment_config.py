"""Configuration of the diversity strategies (paraphrase, negative examples)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..configuration import option
from ..engine.engine_config import SamplingParams

#: Kinds of deliberately flawed answers for preference pairs (descriptions in prompts/augment/negative).
NEGATIVE_KINDS: tuple[str, ...] = (
    "ignores_constraint",
    "factual_error",
    "off_topic",
    "incomplete",
    "overly_verbose",
)


@dataclass
class ParaphraseConfig:
    """Paraphrasing instructions or responses.

    Args:
        k: Paraphrases per row (each asks for a different style of rewording).
        target: ``"instruction"`` or ``"output"``: what is reworded; the rest of the row is kept.
        max_rouge_l: A paraphrase with ROUGE-L F >= this against the original is near-identical and rejected.
        min_words: Shorter paraphrases are rejected.
        sampling: Sampling of the paraphrasing model.
        checkpoint_every: Rows of a step sent to the engine in one call and saved as one checkpoint chunk;
            every completion is also journaled as it finishes, so a large chunk loses nothing on a crash.
    """

    k: int = option(2)
    target: str = option("instruction", choices=["instruction", "output"])
    max_rouge_l: float = option(0.8)
    min_words: int = option(3)
    sampling: SamplingParams = field(
        default_factory=lambda: SamplingParams(max_new_tokens=192, temperature=0.8, top_p=0.95)
    )
    checkpoint_every: int = option(1024)

    def __post_init__(self) -> None:
        if self.k < 1:
            raise ValueError(f"k must be >= 1, got {self.k}")
        if self.target not in ("instruction", "output"):
            raise ValueError(f"target must be 'instruction' or 'output', got {self.target!r}")
        if not 0 < self.max_rouge_l <= 1:
            raise ValueError(f"max_rouge_l must be in (0, 1], got {self.max_rouge_l}")


@dataclass
class NegativeConfig:
    """Deliberately flawed answers, emitted as preference pairs (``prompt``/``chosen``/``rejected``).

    Args:
        kinds: Flaw kinds to draw from (one per row, deterministic in ``seed`` and the row id).
        sampling: Sampling of the model that writes the flawed answers.
        seed: Seed of the kind choice.
        checkpoint_every: Rows of a step sent to the engine in one call and saved as one checkpoint chunk;
            every completion is also journaled as it finishes, so a large chunk loses nothing on a crash.
    """

    kinds: list[str] = option(default_factory=lambda: list(NEGATIVE_KINDS))
    sampling: SamplingParams = field(
        default_factory=lambda: SamplingParams(max_new_tokens=256, temperature=0.8, top_p=0.95)
    )
    seed: int = option(0)
    checkpoint_every: int = option(1024)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.kinds) - set(NEGATIVE_KINDS))
        if unknown or not self.kinds:
            raise ValueError(f"kinds must be some of {', '.join(NEGATIVE_KINDS)}; got {self.kinds}")
