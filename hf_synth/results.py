"""What every step returns: its rows plus what it takes to save them as a run folder (summary, config,
dataset card) or publish them, in the spirit of transformers' ``save_pretrained``/``push_to_hub``.

    result = SelfInstruct(EngineConfig(), config).run(seeds)
    result.save("runs/si")            # dataset/, data.jsonl, rejected.jsonl, summary.json, config.yaml, card
    result.push_to_hub("me/my-data")    # the same rows, rejected rows and card, in one commit

The command line does exactly this (``hf-synth self-instruct ... --output runs/si``), so a folder saved
from Python equals the one the command writes, but for timings."""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def run_diversity(dataset, seeds=None, column: str = "instruction") -> dict[str, Any] | None:
    """The diversity figures of a run's kept instructions (its ``column``) for summary.json and the card
    (best effort: when the embedding model cannot be loaded only the embedding figures are left out, with
    a warning)."""
    from .curation.diversity import dataset_diversity

    seeds = [t for t in seeds if t] if seeds is not None else None
    try:
        return dataset_diversity(dataset, column=column, seeds=seeds)
    except Exception as err:  # noqa: BLE001 - the other figures do not need embeddings
        logger.warning("Embedding figures left out of the diversity numbers: %s", err)
        return dataset_diversity(dataset, column=column, seeds=seeds, embeddings=False)


def card_extras(dataset, source: str | Path | None) -> dict[str, Any]:
    """Skill coverage (best effort: a missing embedding model only costs the card that section) and the Hub
    id the data came from, for dataset cards."""
    source = None if source is None else str(source)
    extras: dict[str, Any] = {"source_datasets": [] if source is None or Path(source).exists() else [source]}
    try:
        from .curation import classify_skills, coverage_report, skill_labeller

        extras["coverage"] = (
            coverage_report(classify_skills(dataset), labeller=skill_labeller()) if len(dataset) else None
        )
    except Exception as err:  # noqa: BLE001 - the card is still useful without this section
        logger.warning("Skill coverage left out of the card: %s", err)
    return extras


def engine_section(engine) -> dict[str, Any] | None:
    """The ``engine:`` section of config.yaml for ``engine``: an :class:`~hf_synth.engine.EngineConfig` as
    its fields, an engine loaded by :func:`~hf_synth.engine.load_engine` as the config it was loaded from;
    None for an engine built another way (its model, backend and device are in summary.json)."""
    from .configuration import to_dict
    from .engine.engine_config import EngineConfig

    config = engine if isinstance(engine, EngineConfig) else getattr(engine, "engine_config", None)
    return to_dict(config) if isinstance(config, EngineConfig) else None


def drop_counts(rejected) -> dict[str, int]:
    """Dropped rows per reason (``filter_reasons`` of the rejected rows), for the card."""
    dropped: Counter = Counter()
    if rejected is not None and "filter_reasons" in rejected.column_names:
        from .filters.dataset_filters import reason_key

        dropped.update(reason_key(r) for row in rejected["filter_reasons"] for r in row)
    return dict(dropped)


class SavableResult:
    """``save(folder)`` and ``push_to_hub(repo_id)`` for a result with ``dataset`` and ``rejected``; a
    subclass says what its ``summary.json``, ``config.yaml`` and card hold (:meth:`summary_data`,
    :meth:`config_data`, :meth:`card`). The summary and card are built once (their diversity and skill
    coverage figures take seconds), so saving and then pushing does that work once."""

    def summary_data(self) -> dict[str, Any]:  # pragma: no cover - every subclass says
        raise NotImplementedError

    def config_data(self) -> dict[str, Any] | None:
        return None

    def build_card(self):  # pragma: no cover - every subclass says
        raise NotImplementedError

    def summary_dict(self) -> dict[str, Any]:
        """What ``summary.json`` holds (built on first use)."""
        cached = self.__dict__.get("_summary_cache")
        if cached is None:
            cached = self.__dict__["_summary_cache"] = self.summary_data()
        return cached

    def card(self):
        """The dataset card (``huggingface_hub.DatasetCard``; built on first use)."""
        cached = self.__dict__.get("_card_cache")
        if cached is None:
            cached = self.__dict__["_card_cache"] = self.build_card()
        return cached

    def save(self, folder: str | Path) -> dict[str, Path]:
        """Write the run folder (see :class:`~hf_synth.run_folder.RunFolder`): ``dataset/``, ``data.jsonl``,
        ``rejected.jsonl``, ``summary.json``, ``config.yaml``, ``README.md``. Returns the paths by name."""
        from .run_folder import RunFolder

        return RunFolder(folder).save(
            self.dataset,
            self.rejected,
            summary=self.summary_dict(),
            config=self.config_data(),
            card=self.card(),
        )

    def push_to_hub(
        self,
        repo_id: str,
        *,
        private: bool = False,
        token: str | None = None,
        exist_ok: bool = True,
        allow_empty: bool = False,
    ) -> str:
        """Publish the rows (and rejected rows, as config ``rejected``) with the card in one commit, as
        ``hf-synth push`` publishes a saved folder (see :func:`hf_synth.hub.push_to_hub`). Returns the
        repo's URL."""
        from datasets import Dataset

        from .hub import push_to_hub

        rejected = self.rejected
        if isinstance(rejected, list):
            rejected = Dataset.from_list(rejected) if rejected else None
        if rejected is not None and len(rejected) == 0:
            rejected = None
        return push_to_hub(
            self.dataset,
            repo_id,
            card=self.card(),
            rejected=rejected,
            private=private,
            token=token,
            exist_ok=exist_ok,
            allow_empty=allow_empty,
        )


def pipeline_fields(pipeline, started: float) -> dict[str, Any]:
    """The :class:`PipelineResult` fields a pipeline (:class:`~hf_synth.SelfInstruct`,
    :class:`~hf_synth.EvolInstruct`) gives its result: the engine section of config.yaml, its prompt
    templates and generation parameters (for the card), and the wall time since ``started``
    (``time.perf_counter()``)."""
    return {
        "engine_config": pipeline.engine_config,
        "prompt_templates": pipeline.prompt_templates(),
        "generation_params": pipeline.generation_params(),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


@dataclass
class PipelineResult(SavableResult):
    """What a generation pipeline returns (:class:`~hf_synth.SelfInstructResult`,
    :class:`~hf_synth.EvolInstructResult`): kept rows, rejected rows (with reasons), the run's counts
    (``summary``, with ``to_dict()``), its configuration and the ``engine:`` section of config.yaml (see
    :func:`engine_section`). A subclass adds its models, prompts and input, and a ``wall_seconds`` field;
    :meth:`run_summary` and :meth:`run_config` build its ``summary.json`` and ``config.yaml``."""

    dataset: Any
    rejected: Any
    summary: Any
    config: Any = None
    #: The ``engine:`` section of config.yaml (see :func:`hf_synth.results.engine_section`).
    engine_config: dict[str, Any] | None = None

    def run_summary(self, seeds, **extra: Any) -> dict[str, Any]:
        """``summary.json``: the counts, the wall time, ``extra``, and the kept rows' diversity (ROUGE-L shares
        against ``seeds``, the run's input instructions)."""
        summary = self.summary.to_dict()
        summary["wall_seconds"] = self.wall_seconds
        summary.update(extra)
        summary["diversity"] = run_diversity(self.dataset, seeds=seeds)
        return summary

    def run_config(self, section: str, config, **extra: Any) -> dict[str, Any]:
        """``config.yaml``: the ``engine:`` section when known, ``config`` under ``section``, then ``extra``."""
        from .configuration import to_dict

        data = {"engine": self.engine_config} if self.engine_config is not None else {}
        return {**data, section: to_dict(config), **extra}


class StepResult(SavableResult, tuple):
    """The result of an augment, filter or generate step: it unpacks like the step's plain value
    (``kept, rejected = paraphrase(...)``), and has ``dataset``, ``rejected``, ``summary`` and
    :meth:`save` / :meth:`push_to_hub`.

    Args:
        parts: What unpacking gives (e.g. ``(kept, rejected)``).
        dataset: The rows the step kept.
        rejected: The rows it dropped, or None.
        summary: What ``summary.json`` holds.
        config: What ``config.yaml`` holds (None: no config.yaml).
        method, tags, steps: What the card says the step was and did (see :func:`hf_synth.cards.step_card`).
        diversity: Add the kept rows' diversity figures to the summary and the card (computed on first
            use: see :func:`run_diversity`), with ROUGE-L shares against ``diversity_seeds`` when given;
            a dict: the figures themselves, when the step has computed them.
        diversity_column: The column the figures are of (default ``instruction``).
        card: The other keyword arguments of :func:`~hf_synth.cards.step_card` (``input_source``,
            ``engines``, ``settings``, ``diversity``...).
    """

    def __new__(cls, parts: tuple, **_: Any) -> StepResult:
        return super().__new__(cls, parts)

    def __init__(
        self,
        parts: tuple,
        *,
        dataset,
        rejected=None,
        summary: dict[str, Any],
        config: dict[str, Any] | None = None,
        method: str,
        tags: list[str],
        steps: list[str],
        diversity: bool | dict[str, Any] = False,
        diversity_seeds=None,
        diversity_column: str = "instruction",
        **card: Any,
    ) -> None:
        self.dataset = dataset
        self.rejected = rejected
        self.step_summary = summary
        self.config = config
        self.diversity = diversity
        self.diversity_seeds = diversity_seeds
        self.diversity_column = diversity_column
        self.card_args = {"method": method, "tags": tags, "steps": steps, **card}

    @property
    def summary(self) -> dict[str, Any]:
        """What ``summary.json`` holds (the diversity figures, when the step records them, on first use)."""
        return self.summary_dict()

    def summary_data(self) -> dict[str, Any]:
        if not self.diversity:
            return self.step_summary
        if isinstance(self.diversity, dict):
            return {**self.step_summary, "diversity": self.diversity}
        figures = run_diversity(self.dataset, seeds=self.diversity_seeds, column=self.diversity_column)
        return {**self.step_summary, "diversity": figures}

    def config_data(self) -> dict[str, Any] | None:
        return self.config

    def build_card(self):
        from .cards import step_card

        args = dict(self.card_args)
        if self.diversity:
            args["diversity"] = self.summary_dict()["diversity"]
        engines = list(args.pop("engines", ()))
        return step_card(
            self.dataset,
            model=engines[0]["model"] if engines else None,
            engines=engines,
            rejected=len(self.rejected) if self.rejected is not None else 0,
            dropped=drop_counts(self.rejected),
            **args,
        )
