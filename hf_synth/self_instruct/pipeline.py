"""The Self-Instruct loop: generate, filter, grow the pool, repeat until the target size."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from datasets import Dataset, concatenate_datasets

from ..checkpoint import Checkpointer, bind_and_load, map_in_threads, std_streams_kept
from ..engine import Engine, EngineConfig, describe_engines
from ..engine.protocol import engine_concurrency, engine_takes_concurrent_calls, engine_workers
from ..filters.dataset_filters import split_filtered
from ..filters.rouge import RougeLIndex
from ..io import load_seed_dataset
from ..progress import datasets_bars_off
from ..results import engine_section, pipeline_fields
from ..rows import add_messages, config_fingerprint, empty_dataset, fingerprint_rows
from .result import (
    OUTPUT_COLUMNS,
    OUTPUT_FEATURES,
    REJECTED_COLUMNS,
    REJECTED_FEATURES,
    SelfInstructResult,
    SelfInstructSummary,
)
from .self_instruct_config import SelfInstructConfig
from .steps import (
    SOURCE,
    TEMPLATE_CLASSIFY,
    TEMPLATE_INPUT_FIRST,
    TEMPLATE_INSTRUCTIONS,
    TEMPLATE_OUTPUT_FIRST,
    build_instruction_requests,
    classify_tasks,
    explode_instructions,
    generate_instances,
    generate_instructions,
    prepare_seed_pool,
    round_requests,
    score_instances,
    score_instructions,
)

logger = logging.getLogger(__name__)


def _failed_requests(requests: Dataset) -> Dataset:
    """Requests whose reply held no parsable list, as rejected rows (stage ``request``) with the raw reply."""
    rows = [
        {
            "id": r["request_id"],
            "instruction": "",
            "input": "",
            "output": "",
            "round": r["round"],
            "parent_ids": r["parent_ids"],
            "stage": "request",
            "filter_reasons": [f"malformed:{r['parse_error']}"],
            "scores": {"words": 0, "rouge_l_max": 0.0, "rouge_l_nearest": ""},
            "raw_completion": r["completion"],
        }
        for r in requests
    ]
    return Dataset.from_list(rows, features=REJECTED_FEATURES) if rows else empty_dataset(REJECTED_FEATURES)


def _as_rejected(dataset: Dataset, stage: str) -> Dataset:
    if len(dataset) == 0:
        return empty_dataset(REJECTED_FEATURES)

    def _rows(batch: dict[str, list]) -> dict[str, list]:
        n = len(batch["id"])
        column = lambda name: [v or "" for v in batch[name]] if name in batch else [""] * n  # noqa: E731
        return {
            "input": column("input"),
            "output": column("output"),
            "stage": [stage] * n,
            "raw_completion": column("instance_completion"),
        }

    dataset = dataset.map(_rows, batched=True, keep_in_memory=True)
    return dataset.select_columns(REJECTED_COLUMNS).cast(REJECTED_FEATURES)


class SelfInstruct:
    """Self-Instruct (Wang et al., 2023) over a ``datasets.Dataset`` of seed instructions.

    >>> engine = GenerationEngine.from_config()            # embedded SmolLM2-135M-Instruct
    >>> result = SelfInstruct(engine, SelfInstructConfig(num_instructions=20)).run(seeds)
    >>> result.dataset  # instruction, input, output, messages, provenance columns

    With ``checkpoint_dir``, each finished chunk and round is kept on disk; running again with the same
    configuration and seeds reuses them (see :class:`~hf_synth.checkpoint.Checkpointer`).
    """

    def __init__(
        self,
        engine: Engine | EngineConfig,
        config: SelfInstructConfig | None = None,
        *,
        checkpoint_dir: str | Path | None = None,
        overwrite: bool = False,
    ) -> None:
        self.engine = engine
        #: The ``engine:`` section of the saved config.yaml (None when unknown: see ``engine_section``).
        self.engine_config = engine_section(engine)
        self.config = config or SelfInstructConfig()
        self.checkpointer = Checkpointer(checkpoint_dir, chunk_size=self.config.checkpoint_every)
        self.overwrite = overwrite

    def generation_params(self) -> dict[str, Any]:
        c = self.config
        return {
            "instruction": c.instruction_sampling.to_dict(),
            "task_type": c.task_type_sampling.to_dict() if c.task_type_method == "llm" else None,
            "instance": c.instance_sampling.to_dict(),
        }

    @staticmethod
    def run_fingerprint(config: SelfInstructConfig, model_id: str, pool: Dataset) -> dict[str, Any]:
        """What ties a checkpoint folder to a run: the configuration, the model and the seed pool (from
        :func:`prepare_seed_pool`)."""
        return {
            # The target size and round limit only decide when to stop; rounds already run stay valid.
            "config": config_fingerprint(config, exclude=("num_instructions", "max_rounds")),
            "model": model_id,
            "seeds": fingerprint_rows(pool),
        }

    @datasets_bars_off
    def run(
        self,
        seeds: Dataset | str | Path | None = None,
        *,
        split: str | None = None,
        source: str | None = None,
    ) -> SelfInstructResult:
        """Run rounds until ``num_instructions`` instructions are kept (or ``max_rounds``, when set, have
        run, or ``stall_rounds`` rounds in a row kept nothing).

        ``seeds``: a Dataset, or a file, folder or Hub id (:func:`hf_synth.io.load_seed_dataset`, with
        ``split``; None: hf-synth's example seeds); ``source`` names a Dataset's origin for the card. An
        engine given as an :class:`~hf_synth.engine.EngineConfig` is loaded here, once the seeds are
        prepared and the checkpoint folder is known to fit (a bad seed file or a folder of another run
        fails in seconds). ``result.save(folder)`` writes what ``hf-synth self-instruct`` writes."""
        started = time.perf_counter()
        example = seeds is None
        if seeds is None or isinstance(seeds, (str, Path)):
            source = str(seeds) if seeds is not None and source is None else source
            seeds = load_seed_dataset(seeds, split=split)
        config = self.config
        pool = prepare_seed_pool(seeds, config)  # once: bad seeds fail here, before a model is loaded
        fingerprint = self.run_fingerprint(config, "", pool)
        (self.engine,) = bind_and_load(
            self.checkpointer,
            [self.engine],
            lambda ids: {**fingerprint, "model": ids[0]},
            overwrite=self.overwrite,
        )
        seed_rows = pool.to_list()
        index = RougeLIndex(r["instruction"] for r in seed_rows)
        index_ids = [r["id"] for r in seed_rows]
        summary = SelfInstructSummary(engines=describe_engines([self.engine]))
        kept_parts: list[Dataset] = []
        rejected_parts: list[Dataset] = []
        machine: list[dict] = []
        width = engine_concurrency(self.engine)
        stalled = 0
        # With overlap, round k+1's instruction step runs in a thread from the start of round k, its
        # few-shot examples drawn from the pool as it stands then (kept up to round k-1).
        ahead = (
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="hf-synth-next-round")
            if config.overlap_rounds and engine_takes_concurrent_calls(self.engine)
            else None
        )
        upcoming: tuple[int, int, Future] | None = None  # (round, requests, its instruction step)
        streams = std_streams_kept() if ahead is not None else contextlib.nullcontext()
        streams.__enter__()  # left in the finally below, after the look-ahead thread has stopped
        try:
            for round_index in itertools.count(1):  # round 0: the seeds
                if len(machine) >= config.num_instructions:
                    break
                if config.max_rounds is not None and round_index > config.max_rounds:
                    summary.stopped_early = f"max_rounds={config.max_rounds} reached"
                    break
                if stalled >= config.stall_rounds:
                    summary.stopped_early = f"the last {stalled} rounds kept nothing"
                    break
                if upcoming is not None and upcoming[0] == round_index:
                    _, count, requests = upcoming
                else:
                    count = round_requests(
                        config, config.num_instructions - len(machine), width, len(machine), summary.requests
                    )
                    requests = None
                upcoming = None
                if ahead is not None:
                    upcoming = self._start_next_round(
                        ahead, round_index + 1, count, seed_rows, machine, summary
                    )
                kept, rejected, stats = self._round(
                    round_index, seed_rows, machine, index, index_ids, count, requests
                )
                summary.add(stats)
                stalled = 0 if stats["kept"] else stalled + 1
                for row in kept.select_columns(["id", "instruction"]):
                    index.add(row["instruction"])
                    index_ids.append(row["id"])
                    machine.append(row)
                kept_parts.append(kept)
                rejected_parts.append(rejected)
                logger.info(
                    "Round %d: %d instructions generated, %d kept (total %d/%d)",
                    round_index,
                    stats["generated"],
                    stats["kept"],
                    len(machine),
                    config.num_instructions,
                )
        finally:
            if ahead is not None:  # a next round started but not needed: its completions are journaled
                ahead.shutdown(wait=True, cancel_futures=True)
            streams.__exit__(None, None, None)
        dataset = concatenate_datasets(kept_parts) if kept_parts else empty_dataset(OUTPUT_FEATURES)
        if len(dataset) > config.num_instructions:
            extra = dataset.select(range(config.num_instructions, len(dataset)))
            dataset = dataset.select(range(config.num_instructions))
            extra = extra.map(lambda r: {"filter_reasons": ["beyond_target"]}, keep_in_memory=True)
            rejected_parts.append(_as_rejected(extra, "target"))
            summary.kept -= len(extra)
            summary.dropped["beyond_target"] += len(extra)
            summary.rejected += len(extra)
        if config.include_seeds:
            dataset = concatenate_datasets([self._seed_output(pool), dataset])
        rejected = (
            concatenate_datasets(rejected_parts) if rejected_parts else empty_dataset(REJECTED_FEATURES)
        )
        summary.reused_chunks = self.checkpointer.reused_chunks
        if len(machine) < config.num_instructions:
            logger.warning(
                "Stopped after %d rounds with %d of %d instructions: %s",
                summary.rounds,
                min(len(machine), config.num_instructions),
                config.num_instructions,
                summary.stopped_early,
            )
        self.checkpointer.close()
        return SelfInstructResult(
            dataset=dataset,
            rejected=rejected,
            summary=summary,
            config=config,
            model=self.engine.model_id,
            seeds_source=source,
            example_seeds=example,
            seed_instructions=pool["instruction"],
            **pipeline_fields(self, started),
        )

    # ------------------------------------------------------------------ one round
    def _round(
        self,
        round_index: int,
        seeds: list[dict],
        machine: list[dict],
        index: RougeLIndex,
        index_ids: list[str],
        count: int,
        requests: Future | None = None,
    ) -> tuple[Dataset, Dataset, dict]:
        """One round; ``requests`` is its instruction step already started (overlap), else it runs here."""
        name = f"round-{round_index:03d}"
        ckpt = self.checkpointer
        if ckpt.has(f"{name}/kept") and ckpt.has(f"{name}/rejected"):
            logger.info("Round %d: reusing finished round from %s", round_index, ckpt.root)
            return (
                ckpt.load(f"{name}/kept"),
                ckpt.load(f"{name}/rejected"),
                ckpt.load_json(f"{name}/stats.json"),
            )

        config = self.config
        tokens_before, seconds_before = self.engine.stats.completion_tokens, self.engine.stats.seconds
        requests = (
            requests.result()
            if requests is not None
            else self._instructions(round_index, seeds, machine, count)
        )
        failed = requests.filter(lambda error: bool(error), input_columns="parse_error", keep_in_memory=True)
        candidates = explode_instructions(requests)
        stats: dict[str, Any] = {
            "requests": len(requests),
            "requests_unparsable": len(failed),
            "generated": len(candidates),
            "task_type_fallbacks": 0,
        }
        rejected_parts = [_failed_requests(failed)]
        kept = empty_dataset(OUTPUT_FEATURES)
        survivors = empty_dataset(OUTPUT_FEATURES)
        if len(candidates):
            survivors, dropped_instr = split_filtered(
                score_instructions(candidates, index, index_ids, config)
            )
            rejected_parts.append(_as_rejected(dropped_instr, "instruction"))
        if len(survivors):
            # Each instruction's task type, instance and checks are its own, so with an engine that takes
            # concurrent calls the survivors go through them as a stream of chunks, several at once: the
            # engine gets the next chunk's prompts while one drains and while hf-synth checks another.
            # Chunks of the engine's width, four in flight: each call still fills the slots.
            size = engine_concurrency(self.engine)
            workers = engine_workers(self.engine)
            if workers > 1 and len(survivors) > size:
                starts = range(0, len(survivors), size)
                chunks = [survivors.select(range(s, min(s + size, len(survivors)))) for s in starts]
                done = map_in_threads(lambda c: self._instances(c, seeds, name), chunks, 2 * workers)
            else:
                done = [self._instances(survivors, seeds, name)]
            stats["task_type_fallbacks"] = sum(fallbacks for _, _, fallbacks in done)
            rejected_parts += [dropped for _, dropped, _ in done]
            kept = concatenate_datasets([final for final, _, _ in done])
        rejected = concatenate_datasets(rejected_parts)
        dropped: Counter = Counter()
        for reasons in rejected["filter_reasons"]:
            dropped.update(reasons)
        stats.update(
            kept=len(kept),
            rejected=len(rejected),
            dropped=dict(dropped),
            completion_tokens=self.engine.stats.completion_tokens - tokens_before,
            generation_seconds=self.engine.stats.seconds - seconds_before,
        )
        ckpt.save(kept, f"{name}/kept")
        ckpt.save(rejected, f"{name}/rejected")
        ckpt.save_json(stats, f"{name}/stats.json")
        return kept, rejected, stats

    def _instances(self, survivors: Dataset, seeds: list[dict], name: str) -> tuple[Dataset, Dataset, int]:
        """Task types, instances and their checks for novel instructions: (kept rows, rejected rows,
        task-type fallbacks)."""
        config, ckpt = self.config, self.checkpointer
        ckpt_or_none = ckpt if ckpt.enabled else None
        typed = classify_tasks(
            survivors, self.engine, config, checkpointer=ckpt_or_none, name=f"{name}/task_types"
        )
        fallbacks = sum(s == "heuristic_fallback" for s in typed["task_type_source"])
        instances = generate_instances(
            typed, self.engine, config, seeds, checkpointer=ckpt_or_none, name=f"{name}/instances"
        )
        final, dropped_inst = split_filtered(score_instances(instances, config, seeds))
        return self._finalize(final), _as_rejected(dropped_inst, "instance"), fallbacks

    def _instructions(self, round_index: int, seeds: list[dict], machine: list[dict], count: int) -> Dataset:
        """The instruction step of one round: ``count`` few-shot prompts from ``seeds`` and ``machine``, and
        the teacher's lists parsed."""
        ckpt = self.checkpointer
        requests = build_instruction_requests(seeds, machine, self.config, round_index, count=count)
        return generate_instructions(
            requests,
            self.engine,
            self.config,
            checkpointer=ckpt if ckpt.enabled else None,
            name=f"round-{round_index:03d}/instructions",
        )

    def _start_next_round(
        self,
        ahead: ThreadPoolExecutor,
        round_index: int,
        count_now: int,
        seeds: list[dict],
        machine: list[dict],
        summary: SelfInstructSummary,
    ) -> tuple[int, int, Future] | None:
        """Start round ``round_index``'s instruction step in ``ahead`` while the round before it runs,
        sized for what is still needed once that round keeps what the keep rate so far predicts; None when
        that round is expected to reach the target, round ``round_index`` is past ``max_rounds`` or it is
        already on disk."""
        config = self.config
        if config.max_rounds is not None and round_index > config.max_rounds:
            return None
        name = f"round-{round_index:03d}"
        if self.checkpointer.has(f"{name}/kept") and self.checkpointer.has(f"{name}/rejected"):
            return None
        kept = len(machine)
        per_request = kept / summary.requests if kept and summary.requests else config.num_new_per_request / 2
        remaining = config.num_instructions - kept - int(count_now * per_request)
        if remaining <= 0:
            return None
        count = round_requests(config, remaining, engine_concurrency(self.engine), kept, summary.requests)
        snapshot = list(machine)  # the pool as it stands now: later rounds append to ``machine``
        return round_index, count, ahead.submit(self._instructions, round_index, seeds, snapshot, count)

    # ------------------------------------------------------------------ output rows
    def prompt_templates(self) -> list[str]:
        """Names of the prompt templates this run uses (recorded in every row and in the card)."""
        classify = [TEMPLATE_CLASSIFY] if self.config.task_type_method == "llm" else []
        return [TEMPLATE_INSTRUCTIONS, *classify, TEMPLATE_INPUT_FIRST, TEMPLATE_OUTPUT_FIRST]

    def _provenance(self) -> dict[str, Any]:
        return {
            "source": SOURCE,
            "model": self.engine.model_id,
            "prompt_templates": self.prompt_templates(),
            "generation_params": json.dumps(self.generation_params(), sort_keys=True),
        }

    def _finalize(self, dataset: Dataset) -> Dataset:
        if len(dataset) == 0:
            return empty_dataset(OUTPUT_FEATURES)
        provenance = self._provenance()
        dataset = add_messages(dataset).map(
            lambda batch: {k: [v] * len(batch["id"]) for k, v in provenance.items()},
            batched=True,
            keep_in_memory=True,
        )
        return dataset.select_columns(OUTPUT_COLUMNS).cast(OUTPUT_FEATURES)

    def _seed_output(self, pool: Dataset) -> Dataset:
        def _row(row: dict[str, Any]) -> dict[str, Any]:
            return {
                "source": "seed",
                "round": 0,
                "parent_ids": [],
                "task_type_source": "seed",
                "is_classification": bool(row["is_classification"]),
                "generation_order": "",
                "demonstration_id": "",
                "model": "",
                "prompt_templates": [],
                "generation_params": "",
                "scores": {"words": 0, "rouge_l_max": 0.0, "rouge_l_nearest": ""},
            }

        return (
            add_messages(pool.map(_row, keep_in_memory=True))
            .select_columns(OUTPUT_COLUMNS)
            .cast(OUTPUT_FEATURES)
        )
