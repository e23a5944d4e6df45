"""The Evol-Instruct loop: evolve, eliminate, answer, and evolve the survivors again."""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from datasets import Dataset, Features, List, Value, concatenate_datasets

from ..checkpoint import Checkpointer, bind_and_load, map_in_threads
from ..engine import Engine, EngineConfig, describe_engines
from ..engine.protocol import engine_concurrency, engine_workers
from ..io import load_seed_dataset
from ..progress import datasets_bars_off
from ..results import PipelineResult, card_extras, engine_section, pipeline_fields
from ..rows import BASE_FEATURES, add_messages, config_fingerprint, empty_dataset, fingerprint_rows
from .evol_instruct_config import OPERATIONS, EvolInstructConfig
from .steps import (
    JUDGE_FEATURES,
    SCORE_FEATURES,
    TEMPLATE_BREADTH,
    TEMPLATE_IN_DEPTH,
    TEMPLATE_JUDGE,
    build_evolution_requests,
    calibrate_judge,
    check_evolutions,
    evolve_instructions,
    generate_responses,
    judge_evolutions,
    prepare_roots,
)

logger = logging.getLogger(__name__)

SOURCE = "evol-instruct"

EVOL_FEATURES = Features(
    {
        **BASE_FEATURES,
        "parent_id": Value("string"),
        "root_id": Value("string"),
        "parent_instruction": Value("string"),
        "evolution_op": Value("string"),
        "eliminated": Value("bool"),
        "elimination_reason": Value("string"),
        "elimination_reasons": List(Value("string")),
        "judge": JUDGE_FEATURES,
        "scores": SCORE_FEATURES,
        "model": Value("string"),
        "judge_model": Value("string"),
        "response_model": Value("string"),
        "prompt_templates": List(Value("string")),
        "generation_params": Value("string"),
        "evolution_completion": Value("string"),
        "judge_raw": Value("string"),
    }
)
#: Columns of every Evol-Instruct row (kept or eliminated), in order.
EVOL_COLUMNS = list(EVOL_FEATURES)


@dataclass
class EvolInstructSummary:
    """Counts of one run: per operation (evolved/kept) and per elimination reason (each reason once per row)."""

    rounds: int = 0
    evolved: int = 0
    kept: int = 0
    eliminated: int = 0
    per_operation: dict[str, dict[str, int]] = field(
        default_factory=lambda: {op: {"evolved": 0, "kept": 0} for op in OPERATIONS}
    )
    reasons: Counter = field(default_factory=Counter)
    completion_tokens: int = 0
    generation_seconds: float = 0.0
    judge_self_check: dict[str, Any] = field(default_factory=dict)
    judge_enforced: bool = True
    engines: list[dict[str, Any]] = field(default_factory=list)

    def add_round(self, rows: Dataset, tokens: int, seconds: float) -> None:
        self.rounds += 1
        self.completion_tokens += tokens
        self.generation_seconds += seconds
        for op, eliminated, reasons in zip(
            rows["evolution_op"], rows["eliminated"], rows["elimination_reasons"], strict=True
        ):
            self.evolved += 1
            self.per_operation[op]["evolved"] += 1
            if eliminated:
                self.eliminated += 1
                self.reasons.update(reasons)
            else:
                self.kept += 1
                self.per_operation[op]["kept"] += 1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["reasons"] = dict(self.reasons.most_common())
        data["generation_seconds"] = round(self.generation_seconds, 2)
        data["tokens_per_second"] = (
            round(self.completion_tokens / self.generation_seconds, 2) if (self.generation_seconds) else 0.0
        )
        return data


@dataclass
class EvolInstructResult(PipelineResult):
    """Kept evolutions (answered), eliminated ones (with reasons), and counts; ``rejected`` as in
    :class:`~hf_synth.SelfInstructResult` (``eliminated`` is its former name, still readable).
    ``save(folder)`` and ``push_to_hub(repo_id)`` as for Self-Instruct (see :mod:`hf_synth.results`)."""

    #: The evolving, judge and response models.
    models: list[str] = field(default_factory=list)
    prompt_templates: list[str] = field(default_factory=list)
    generation_params: dict[str, Any] = field(default_factory=dict)
    #: Where the input came from (a file, folder or Hub id), for the card; None: a Dataset given as is.
    source: str | None = None
    input_instructions: list[str] | None = None
    wall_seconds: float | None = None

    def summary_data(self) -> dict[str, Any]:
        return self.run_summary(self.input_instructions)

    def config_data(self) -> dict[str, Any]:
        config = self.config or EvolInstructConfig()
        return self.run_config(
            "evol_instruct", config, judge_model=self.models[1], response_model=self.models[2]
        )

    def build_card(self):
        from ..cards import evol_instruct_card

        config = self.config or EvolInstructConfig()
        return evol_instruct_card(
            self.dataset,
            self.summary_dict(),
            model=self.models[0],
            judge_model=self.models[1] if config.use_judge else "",
            response_model=self.models[2],
            prompt_templates=self.prompt_templates,
            generation_params=self.generation_params,
            source=self.source if self.source is not None else "a datasets.Dataset",
            **card_extras(self.dataset, self.source),
        )

    @property
    def eliminated(self) -> Dataset:
        """The rejected (eliminated) evolutions: the name used before 0.2."""
        return self.rejected


class EvolInstruct:
    """Evol-Instruct (Xu et al., 2023) over any instruction ``Dataset``.

    ``engine`` evolves; ``judge_engine`` and ``response_engine`` default to it but may be other models.
    Survivors of round k are the parents of round k+1; with ``retry_failed`` an eliminated evolution's
    parent is evolved again next round. With ``checkpoint_dir`` finished chunks and rounds are kept on disk
    and reused by a re-run with the same configuration.
    """

    def __init__(
        self,
        engine: Engine | EngineConfig,
        config: EvolInstructConfig | None = None,
        *,
        judge_engine: Engine | EngineConfig | None = None,
        response_engine: Engine | EngineConfig | None = None,
        checkpoint_dir: str | Path | None = None,
        overwrite: bool = False,
    ) -> None:
        self.engine = engine
        self.judge_engine = judge_engine or engine
        self.response_engine = response_engine or engine
        #: The ``engine:`` section of the saved config.yaml (None when unknown: see ``engine_section``).
        self.engine_config = engine_section(engine)
        self.config = config or EvolInstructConfig()
        self.checkpointer = Checkpointer(checkpoint_dir, chunk_size=self.config.checkpoint_every)
        self.overwrite = overwrite

    def _engines(self) -> list[Engine]:
        unique: dict[int, Engine] = {}
        for engine in (self.engine, self.judge_engine, self.response_engine):
            unique[id(engine)] = engine
        return list(unique.values())

    def generation_params(self) -> dict[str, Any]:
        c = self.config
        return {
            "evolution": c.evolution_sampling.to_dict(),
            "judge": c.judge_sampling.to_dict() if c.use_judge else None,
            "response": c.response_sampling.to_dict(),
            "operation_weights": c.operation_weights,
        }

    def prompt_templates(self) -> list[str]:
        templates = [TEMPLATE_IN_DEPTH, TEMPLATE_BREADTH]
        return templates + [TEMPLATE_JUDGE] if self.config.use_judge else templates

    @staticmethod
    def run_fingerprint(config: EvolInstructConfig, model_ids: list[str], roots: Dataset) -> dict[str, Any]:
        """What ties a checkpoint folder to a run: the configuration, the evolving, judge and response
        models, and the input rows (from :func:`prepare_roots`)."""
        return {
            # rounds only decides when to stop: rounds already run stay valid for a longer run
            "config": config_fingerprint(config, exclude=("rounds",)),
            "models": list(model_ids),
            "input": fingerprint_rows(roots),
        }

    @datasets_bars_off
    def run(
        self, dataset: Dataset | str | Path, *, split: str | None = None, source: str | None = None
    ) -> EvolInstructResult:
        """Evolve every row for ``rounds`` rounds; returns kept (answered) and eliminated evolutions.

        ``dataset``: a Dataset, or a file, folder, run folder or Hub id (loaded with ``split``); ``source``
        names a Dataset's origin for the card. Engines given as :class:`~hf_synth.engine.EngineConfig` are
        loaded here (one per distinct config), once the input is prepared and the checkpoint folder is
        known to fit."""
        started = time.perf_counter()
        if isinstance(dataset, (str, Path)):
            source = str(dataset) if source is None else source
            dataset = load_seed_dataset(dataset, split=split)
        config = self.config
        roots = prepare_roots(dataset, config)  # once: bad input fails here, before a model is loaded
        fingerprint = self.run_fingerprint(config, [], roots)
        self.engine, self.judge_engine, self.response_engine = bind_and_load(
            self.checkpointer,
            [self.engine, self.judge_engine, self.response_engine],
            lambda ids: {**fingerprint, "models": list(ids)},
            overwrite=self.overwrite,
        )
        summary = EvolInstructSummary(
            engines=describe_engines([self.engine, self.judge_engine, self.response_engine])
        )
        self._enforce_judge = True
        if config.use_judge and config.judge_self_check != "off":
            summary.judge_self_check = calibrate_judge(self.judge_engine, config)
            if not summary.judge_self_check["passed"]:
                check = summary.judge_self_check
                self._enforce_judge = config.judge_self_check == "ignore"
                logger.warning(
                    "Judge %s answered %d of %d control questions correctly (answers: %s); %s. Use a stronger "
                    "--judge-model, or --no-judge.",
                    self.judge_engine.model_id,
                    check["correct"],
                    check["total"],
                    check["answers"],
                    "its verdicts are used anyway (judge_self_check=ignore)"
                    if self._enforce_judge
                    else "its verdicts are recorded but eliminate nothing",
                )
        summary.judge_enforced = config.use_judge and self._enforce_judge
        parents = roots
        parts: list[Dataset] = []
        for round_index in range(1, config.rounds + 1):
            if len(parents) == 0:
                break
            rows, tokens, seconds = self._round(round_index, parents)
            summary.add_round(rows, tokens, seconds)
            parts.append(rows)
            survivors = rows.filter(lambda e: not e, input_columns="eliminated", keep_in_memory=True)
            next_parents = survivors.select_columns(["id", "instruction", "root_id", "round"])
            if config.retry_failed:
                failed = {p for p, e in zip(rows["parent_id"], rows["eliminated"], strict=True) if e}
                retry = parents.filter(
                    lambda i, ids=failed: i in ids, input_columns="id", keep_in_memory=True
                )
                next_parents = concatenate_datasets([next_parents.cast(parents.features), retry])
            logger.info(
                "Evol round %d of %d: %d evolved, %d kept%s",
                round_index,
                config.rounds,
                len(rows),
                len(survivors),
                f"; {len(next_parents)} parents next round" if round_index < config.rounds else "",
            )
            parents = next_parents
        everything = concatenate_datasets(parts) if parts else empty_dataset(EVOL_FEATURES)
        kept = everything.filter(lambda e: not e, input_columns="eliminated", keep_in_memory=True)
        eliminated = everything.filter(lambda e: e, input_columns="eliminated", keep_in_memory=True)
        self.checkpointer.close()
        column = config.instruction_column
        return EvolInstructResult(
            dataset=kept,
            rejected=eliminated,
            summary=summary,
            config=config,
            models=[self.engine.model_id, self.judge_engine.model_id, self.response_engine.model_id],
            source=source,
            input_instructions=dataset[column] if column in dataset.column_names else None,
            **pipeline_fields(self, started),
        )

    def _round(self, round_index: int, parents: Dataset) -> tuple[Dataset, int, float]:
        name = f"evol-round-{round_index:02d}"
        ckpt = self.checkpointer
        if ckpt.has(f"{name}/rows"):
            logger.info("Evol round %d: reusing finished round from %s", round_index, ckpt.root)
            stats = ckpt.load_json(f"{name}/stats.json")
            return ckpt.load(f"{name}/rows"), stats["completion_tokens"], stats["generation_seconds"]
        engines = self._engines()
        tokens_before = sum(e.stats.completion_tokens for e in engines)
        seconds_before = sum(e.stats.seconds for e in engines)
        config = self.config
        requests = build_evolution_requests(parents, config, round_index)
        # Every step decides each row alone, so with engines that take concurrent calls the round runs as
        # a stream of chunks, each through evolve -> check -> judge -> respond, several at once: the engine
        # gets the next chunk's prompts while one drains and while hf-synth checks and judges another.
        workers = max(engine_workers(e) for e in engines)
        # Chunks of the engines' width, four in flight: each call still fills the slots.
        size = max(engine_concurrency(e) for e in engines)
        if workers > 1 and len(requests) > size:
            starts = range(0, len(requests), size)
            chunks = [requests.select(range(s, min(s + size, len(requests)))) for s in starts]
            rows = concatenate_datasets(
                map_in_threads(lambda chunk: self._steps(chunk, name), chunks, 2 * workers)
            )
        else:
            rows = self._steps(requests, name)
        tokens = sum(e.stats.completion_tokens for e in engines) - tokens_before
        seconds = sum(e.stats.seconds for e in engines) - seconds_before
        ckpt.save(rows, f"{name}/rows")
        ckpt.save_json({"completion_tokens": tokens, "generation_seconds": seconds}, f"{name}/stats.json")
        return rows, tokens, seconds

    def _steps(self, requests: Dataset, name: str) -> Dataset:
        """Evolve ``requests``, check, judge and answer the evolutions: the round's rows, finalised."""
        config, ckpt = self.config, self.checkpointer
        rows = evolve_instructions(requests, self.engine, config, checkpointer=ckpt, name=f"{name}/evolve")
        rows = check_evolutions(rows, config)
        rows = judge_evolutions(
            rows,
            self.judge_engine,
            config,
            enforce=self._enforce_judge,
            checkpointer=ckpt,
            name=f"{name}/judge",
        )
        rows = generate_responses(
            rows, self.response_engine, config, checkpointer=ckpt, name=f"{name}/respond"
        )
        return self._finalize(rows)

    def _finalize(self, rows: Dataset) -> Dataset:
        provenance = {
            "input": "",
            "source": SOURCE,
            "model": self.engine.model_id,
            "judge_model": self.judge_engine.model_id if self.config.use_judge else "",
            "response_model": self.response_engine.model_id,
            "prompt_templates": self.prompt_templates(),
            "generation_params": json.dumps(self.generation_params(), sort_keys=True),
        }

        def _row(row: dict[str, Any]) -> dict[str, Any]:
            reasons = row["elimination_reasons"]
            return provenance | {
                "eliminated": bool(reasons),
                "elimination_reason": reasons[0] if reasons else "",
            }

        rows = rows.map(_row, keep_in_memory=True)
        return add_messages(rows).select_columns(EVOL_COLUMNS).cast(EVOL_FEATURES)
