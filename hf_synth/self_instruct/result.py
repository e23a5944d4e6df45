"""What a Self-Instruct run returns: its row schemas, its counts and the result that saves and pushes itself."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from datasets import Features, List, Value

from ..io import EXAMPLE_SEEDS
from ..results import PipelineResult, card_extras
from ..rows import BASE_FEATURES
from .self_instruct_config import SelfInstructConfig

_SCORES = {"words": Value("int64"), "rouge_l_max": Value("float64"), "rouge_l_nearest": Value("string")}
OUTPUT_FEATURES = Features(
    {
        **BASE_FEATURES,
        "parent_ids": List(Value("string")),
        "is_classification": Value("bool"),
        "task_type_source": Value("string"),
        "generation_order": Value("string"),
        "demonstration_id": Value("string"),
        "model": Value("string"),
        "prompt_templates": List(Value("string")),
        "generation_params": Value("string"),
        "scores": _SCORES,
    }
)
REJECTED_FEATURES = Features(
    {
        "id": Value("string"),
        "instruction": Value("string"),
        "input": Value("string"),
        "output": Value("string"),
        "round": Value("int64"),
        "parent_ids": List(Value("string")),
        "stage": Value("string"),
        "filter_reasons": List(Value("string")),
        "scores": _SCORES,
        "raw_completion": Value("string"),
    }
)
#: Columns of every output row, in order.
OUTPUT_COLUMNS = list(OUTPUT_FEATURES)
#: Columns of rejected rows: what is known at the stage they were dropped, and the raw reply.
REJECTED_COLUMNS = list(REJECTED_FEATURES)


@dataclass
class SelfInstructSummary:
    """Counts of one run. ``dropped`` counts each reason once per row it applies to.

    Every parsed instruction is either kept or rejected, and every reply without a parsable list is one
    more rejected row: ``generated + requests_unparsable == kept + rejected``.
    """

    rounds: int = 0
    requests: int = 0
    requests_unparsable: int = 0
    generated: int = 0
    kept: int = 0
    rejected: int = 0
    dropped: Counter = field(default_factory=Counter)
    task_type_fallbacks: int = 0
    completion_tokens: int = 0
    generation_seconds: float = 0.0
    reused_chunks: int = 0
    engines: list[dict[str, Any]] = field(default_factory=list)
    #: Why the run ended before its target ("" when it reached it).
    stopped_early: str = ""

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.generation_seconds if self.generation_seconds else 0.0

    def add(self, other: dict[str, Any]) -> None:
        for key, value in other.items():
            if key == "dropped":
                self.dropped.update(value)
            elif key != "rounds":
                setattr(self, key, getattr(self, key) + value)
        self.rounds += 1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["dropped"] = dict(self.dropped.most_common())
        data["tokens_per_second"] = round(self.tokens_per_second, 2)
        data["generation_seconds"] = round(self.generation_seconds, 2)
        return data


@dataclass
class SelfInstructResult(PipelineResult):
    """What :meth:`SelfInstruct.run` returns: kept rows, rejected rows (with reasons), and counts;
    ``save(folder)`` writes the run folder (summary with wall time and diversity, config.yaml with the
    engine section, the card) and ``push_to_hub(repo_id)`` publishes it (see :mod:`hf_synth.results`)."""

    model: str | None = None
    prompt_templates: list[str] = field(default_factory=list)
    generation_params: dict[str, Any] = field(default_factory=dict)
    #: Where the seeds came from (a file, folder or Hub id), for the card; None: a Dataset given as is.
    seeds_source: str | None = None
    example_seeds: bool = False
    seed_instructions: list[str] | None = None
    wall_seconds: float | None = None

    def summary_data(self) -> dict[str, Any]:
        return self.run_summary(self.seed_instructions, model=self.model)

    def config_data(self) -> dict[str, Any]:
        return self.run_config("self_instruct", self.config or SelfInstructConfig())

    def build_card(self):
        from ..cards import self_instruct_card

        return self_instruct_card(
            self.dataset,
            self.summary_dict(),
            model=self.model or "",
            prompt_templates=self.prompt_templates,
            generation_params=self.generation_params,
            seeds=seeds_name(self.seeds_source, self.example_seeds),
            **card_extras(self.dataset, self.seeds_source),
        )


def seeds_name(source: str | None, example: bool) -> str:
    """How the card names the seeds: their file, folder or Hub id, hf-synth's example seeds, or a Dataset."""
    if source is not None:
        return str(source)
    return f"hf-synth example seeds ({EXAMPLE_SEEDS.name})" if example else "a datasets.Dataset"
