"""Configuration of the Evol-Instruct pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..configuration import option
from ..engine.engine_config import SamplingParams

#: The four in-depth operations and breadth expansion, in the order they are documented.
OPERATIONS: tuple[str, ...] = ("deepening", "concretizing", "reasoning", "constraints", "breadth")
IN_DEPTH: frozenset[str] = frozenset(OPERATIONS[:4])

#: Phrases of hf-synth's own evolution prompts; an evolved instruction that contains one its parent did not
#: have is the teacher talking about the rewrite instead of writing it.
DEFAULT_SCAFFOLDING = (
    "rewritten instruction",
    "original instruction",
    "new instruction",
    "the instruction above",
    "instruction for inspiration",
    "rewritten version",
    "rewrite the instruction",
    "given instruction",
    "rewritten prompt",
    "given prompt",
    "#rewritten",
)


def _evolution_sampling() -> SamplingParams:
    return SamplingParams(max_new_tokens=160, temperature=0.7, top_p=0.9)


def _judge_sampling() -> SamplingParams:
    return SamplingParams(max_new_tokens=6, temperature=0.0)


def _response_sampling() -> SamplingParams:
    return SamplingParams(max_new_tokens=256, temperature=0.7, top_p=0.9)


@dataclass
class EvolInstructConfig:
    """How instructions are evolved, judged and answered.

    Args:
        rounds: Evolution rounds; survivors of round k are the parents of round k+1.
        operation_weights: Relative weight of each operation (``deepening``, ``concretizing``,
            ``reasoning``, ``constraints``, ``breadth``); missing ones get 0. Default: uniform.
        retry_failed: When an evolution is eliminated, evolve its parent again in the next round (with a
            newly drawn operation) instead of ending that lineage.
        use_judge: Ask the judge model whether each evolution is coherent, solvable and (for in-depth
            operations) more complex than its parent.
        judge_self_check: Before the run, ask the judge control questions with known answers
            (``calibrate_judge``). ``"enforce"`` (default): a judge that fails them is not allowed to
            eliminate anything (its verdicts are still recorded, and a warning says so); ``"ignore"``: use
            its verdicts anyway; ``"off"``: skip the check.
        judge_unparsable: What to do with a verdict that cannot be parsed: ``"eliminate"`` (reason
            ``judge_unparsable``) or ``"keep"`` (marked in ``judge.parsed``). Never silently ignored.
        min_judge_score: Eliminate evolutions the judge scores below this (1-10 scale; 0 = off).
        min_words: Evolutions with fewer words (or only stop words) are eliminated.
        max_parent_similarity: ROUGE-L F against the parent at or above which an in-depth evolution
            adds no information (``no_new_information``).
        min_new_words: An in-depth rewrite must add at least this many content words (not stop words)
            that its parent did not have; fewer is a ``trivial_edit``.
        breadth_max_similarity: The same bound for breadth expansion, which must be a new instruction.
        scaffolding_phrases: Prompt phrases an evolution must not copy (unless its parent had them).
        evolution_sampling / judge_sampling / response_sampling: Sampling per step.
        filter_broken_text: Eliminate evolutions and responses whose text is broken (U+FFFD, control
            characters, brackets or code fences left open) or was cut at the token limit
            (``evolution_truncated``, ``response_truncated``).
        filter_toxicity: Eliminate rows whose instruction or response the offline toxicity classifier
            (alt-profanity-check) scores at or above toxicity_threshold (reason ``toxic:<column>``).
        toxicity_threshold: Score at which filter_toxicity eliminates a row.
        instruction_column: Column of the input dataset holding the instructions to evolve.
        input_column: Column of the input dataset holding an optional input for each instruction; it is
            appended to the instruction (after a blank line) before evolving, since evolution rewrites the
            whole prompt.
        include_originals: Also return the input rows (round 0, answered by the response model).
        checkpoint_every: Rows of a step sent to the engine in one call and saved as one checkpoint chunk;
            every completion is also journaled as it finishes, so a large chunk loses nothing on a crash.
        seed: Seed of operation choice and (through the sampling params) generation.
    """

    rounds: int = option(2)
    operation_weights: dict[str, float] = field(default_factory=lambda: dict.fromkeys(OPERATIONS, 1.0))
    retry_failed: bool = True
    use_judge: bool = True
    judge_self_check: str = "enforce"
    judge_unparsable: str = "eliminate"
    min_judge_score: float = 0.0
    min_words: int = 3
    max_parent_similarity: float = 0.9
    min_new_words: int = 2
    breadth_max_similarity: float = 0.7
    scaffolding_phrases: list[str] = field(default_factory=lambda: list(DEFAULT_SCAFFOLDING))
    evolution_sampling: SamplingParams = field(default_factory=_evolution_sampling)
    judge_sampling: SamplingParams = field(default_factory=_judge_sampling)
    response_sampling: SamplingParams = field(default_factory=_response_sampling)
    filter_broken_text: bool = option(True)
    filter_toxicity: bool = option(True)
    toxicity_threshold: float = 0.5
    instruction_column: str = option("instruction")
    input_column: str = option("input")
    include_originals: bool = option(False)
    checkpoint_every: int = option(1024)
    seed: int = option(42)

    def __post_init__(self) -> None:
        if self.rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {self.rounds}")
        unknown = sorted(set(self.operation_weights) - set(OPERATIONS))
        if unknown:
            raise ValueError(f"Unknown operation(s) {', '.join(unknown)}; valid: {', '.join(OPERATIONS)}")
        if any(w < 0 for w in self.operation_weights.values()) or not any(self.operation_weights.values()):
            raise ValueError("operation_weights must be >= 0 with at least one > 0")
        if self.judge_self_check not in ("enforce", "ignore", "off"):
            raise ValueError(
                f"judge_self_check must be 'enforce', 'ignore' or 'off', got {self.judge_self_check!r}"
            )
        if self.judge_unparsable not in ("eliminate", "keep"):
            raise ValueError(f"judge_unparsable must be 'eliminate' or 'keep', got {self.judge_unparsable!r}")
        for name in ("max_parent_similarity", "breadth_max_similarity"):
            if not 0 < getattr(self, name) <= 1:
                raise ValueError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if self.checkpoint_every < 1:
            raise ValueError("checkpoint_every must be >= 1")
