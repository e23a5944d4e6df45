"""Configuration of the Self-Instruct pipeline."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..configuration import option
from ..engine.engine_config import SamplingParams
from ..filters.heuristics import DEFAULT_BLOCKED_KEYWORDS


def _instruction_sampling() -> SamplingParams:
    return SamplingParams(max_new_tokens=256, temperature=0.9, top_p=0.95)


def _task_type_sampling() -> SamplingParams:
    return SamplingParams(max_new_tokens=4, temperature=0.0)


def _instance_sampling() -> SamplingParams:
    return SamplingParams(max_new_tokens=256, temperature=0.7, top_p=0.9)


@dataclass
class SelfInstructConfig:
    """Everything the Self-Instruct loop does, with the paper's defaults where it has them.

    Args:
        num_instructions: Target number of new, kept machine-generated instructions.
        max_rounds: Stop after this many rounds even if the target is not reached (None, the default: no
            limit; a run then stops short of its target only when stall_rounds rounds in a row keep nothing).
        requests_per_round: Few-shot prompts sent to the teacher per round. None (the default) sizes each
            round from what is still needed, the keep rate observed so far and the engine's width (its
            ``max_concurrency``): at least that many prompts when that much work is left, and rounds of
            about a twentieth of the target, so 50,000 instructions take a few dozen rounds.
        stall_rounds: Rounds in a row that keep nothing after which a run stops short of its target.
        overlap_rounds: With an engine that takes concurrent calls (``concurrent_calls``), send the next round's
            instruction requests while this round is filtered and its instances generated, so the engine
            never waits for hf-synth between rounds. The few-shot machine examples of round k are then
            drawn from the pool kept up to round k-2 (not k-1); novelty is still checked against
            everything kept so far. No effect with in-process engines, which take one call at a time.
        num_seed_examples: Human seed instructions per prompt (the paper: 6).
        num_machine_examples: Machine instructions per prompt once the pool has some (the paper: 2).
        num_new_per_request: How many new instructions each prompt asks for (extra ones are dropped).
        task_type_method: ``"heuristic"`` decides classification tasks with a keyword heuristic (92%
            accurate on the 175 Self-Instruct seeds); ``"llm"`` asks the teacher, as the paper does
            (unparsable answers fall back to the heuristic and are counted). The embedded 135M teacher
            is only 59% accurate at it, so use ``"llm"`` with larger teachers.
        instruction_sampling / task_type_sampling / instance_sampling: Sampling per step.
        min_instruction_words / max_instruction_words: Length bounds on instructions (in words).
        rouge_l_threshold: Keep an instruction only if its ROUGE-L F against the pool is below this.
        blocked_keywords: Instructions with any of these words/phrases are unsuitable for a text model.
        filter_refusals: Drop outputs in which the teacher refuses or talks about being an AI.
        filter_broken_text: Drop rows whose text is broken (U+FFFD, control characters, brackets or code
            fences left open) or was cut at the token limit (``instance_truncated``).
        filter_toxicity: Drop rows whose instruction, input or output the offline toxicity classifier
            (alt-profanity-check) scores at or above toxicity_threshold (reason ``toxic:<column>``).
        toxicity_threshold: Score at which filter_toxicity drops a row.
        include_seeds: Also return the seed rows in the output dataset (``source == "seed"``).
        instruction_column: Column of the seed dataset holding each seed task's instruction.
        input_column: Column of the seed dataset holding the seed task's input (optional; a Self-Instruct
            style ``instances`` column, a list of ``{input, output}``, is read when it is absent).
        output_column: Column of the seed dataset holding the seed task's reference output (optional; read
            from ``instances`` when absent).
        focus_skills: Kinds of task the prompts ask for most (e.g. the ``under_covered`` skills that
            ``hf-synth report`` lists), to steer a run toward what a dataset lacks.
        checkpoint_every: Rows of a step sent to the engine in one call and saved as one checkpoint chunk;
            every completion is also journaled as it finishes, so a large chunk loses nothing on a crash.
        seed: Seed for few-shot sampling and (through the sampling params) for generation.
    """

    num_instructions: int = option(100)
    max_rounds: int | None = option(None)
    requests_per_round: int | None = option(None)
    stall_rounds: int = 3
    overlap_rounds: bool = option(True)
    num_seed_examples: int = 6
    num_machine_examples: int = 2
    num_new_per_request: int = 8
    task_type_method: str = option("heuristic", choices=["heuristic", "llm"])
    instruction_sampling: SamplingParams = field(default_factory=_instruction_sampling)
    task_type_sampling: SamplingParams = field(default_factory=_task_type_sampling)
    instance_sampling: SamplingParams = field(default_factory=_instance_sampling)
    min_instruction_words: int = 3
    max_instruction_words: int = 150
    rouge_l_threshold: float = 0.7
    blocked_keywords: list[str] = field(default_factory=lambda: list(DEFAULT_BLOCKED_KEYWORDS))
    filter_refusals: bool = True
    filter_broken_text: bool = option(True)
    filter_toxicity: bool = option(True)
    toxicity_threshold: float = 0.5
    include_seeds: bool = option(False)
    instruction_column: str = option("instruction")
    input_column: str = option("input")
    output_column: str = option("output")
    focus_skills: list[str] = option(default_factory=list)
    checkpoint_every: int = option(1024)
    seed: int = option(42)

    def __post_init__(self) -> None:
        positive = (
            "num_instructions",
            "max_rounds",
            "requests_per_round",
            "stall_rounds",
            "num_new_per_request",
            "checkpoint_every",
        )
        for name in positive:
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.num_seed_examples < 1 or self.num_machine_examples < 0:
            raise ValueError("num_seed_examples must be >= 1 and num_machine_examples >= 0")
        if self.task_type_method not in ("llm", "heuristic"):
            raise ValueError(f"task_type_method must be 'llm' or 'heuristic', got {self.task_type_method!r}")
        if not 0 < self.rouge_l_threshold <= 1:
            raise ValueError(f"rouge_l_threshold must be in (0, 1], got {self.rouge_l_threshold}")
        if not 0 <= self.min_instruction_words <= self.max_instruction_words:
            raise ValueError("need 0 <= min_instruction_words <= max_instruction_words")
