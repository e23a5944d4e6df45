"""hf-synth: synthetic fine-tuning datasets on top of datasets, transformers and TRL.

The public API: the generation engine, Self-Instruct, Evol-Instruct, diversity strategies, filters and
curation, I/O, cards, Hub publishing and the quality report.

Importing ``hf_synth`` is light (no torch, datasets, numba or nltk): every public name is listed once
below by submodule (:func:`hf_synth._lazy.attach`, as huggingface_hub does) and its submodule is imported
on first access. The imports under ``TYPE_CHECKING`` are the same names for type checkers and IDEs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import attach

__version__ = "0.1.0"

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "augment": [
            "NegativeConfig",
            "ParaphraseConfig",
            "back_translate",
            "blend",
            "fill_template",
            "paraphrase",
            "preference_pairs",
            "propose_slot_values",
        ],
        "cards": ["evol_instruct_card", "self_instruct_card"],
        "checkpoint": ["CheckpointMismatchError", "Checkpointer"],
        "curation": ["SkillClassifier", "classify_skills", "coverage_report"],
        "engine": [
            "DEFAULT_MODEL_ID",
            "DefaultModelNotInstalledError",
            "Engine",
            "EngineConfig",
            "GenerationEngine",
            "GenerationOutput",
            "SamplingParams",
            "default_model_path",
            "generate_distributed",
            "load_engine",
            "ServerEngine",
        ],
        "evol_instruct": ["EvolInstruct", "EvolInstructConfig", "EvolInstructResult"],
        "filters": [
            "RougeLIndex",
            "complexity_filter",
            "greedy_novelty",
            "greedy_novelty_fast",
            "length_filter",
            "minhash_dedup_filter",
            "rouge_l_f",
            "rouge_novelty_filter",
            "run_filters",
            "split_filtered",
        ],
        "hub": ["HubPushError", "push_to_hub", "write_repo"],
        "io": ["EXAMPLE_SEEDS", "load_seed_dataset", "save_run"],
        "metrics": ["load_rouge_l"],
        "prompts": ["render_messages", "template_names"],
        "refine": ["Refine", "RefineConfig", "RefineResult"],
        "report": ["build_report", "write_report"],
        "results": ["StepResult"],
        "review": ["ReviewConfig", "apply_review", "save_reviewed", "serve_review"],
        "run_folder": ["RunFolder"],
        "self_instruct": [
            "SelfInstruct",
            "SelfInstructConfig",
            "SelfInstructResult",
            "parse_instruction_list",
        ],
    },
)


if TYPE_CHECKING:  # pragma: no cover
    from .augment import (
        NegativeConfig,
        ParaphraseConfig,
        back_translate,
        blend,
        fill_template,
        paraphrase,
        preference_pairs,
        propose_slot_values,
    )
    from .cards import evol_instruct_card, self_instruct_card
    from .checkpoint import Checkpointer, CheckpointMismatchError
    from .curation import SkillClassifier, classify_skills, coverage_report
    from .engine import (
        DEFAULT_MODEL_ID,
        DefaultModelNotInstalledError,
        Engine,
        EngineConfig,
        GenerationEngine,
        GenerationOutput,
        SamplingParams,
        ServerEngine,
        default_model_path,
        generate_distributed,
        load_engine,
    )
    from .evol_instruct import EvolInstruct, EvolInstructConfig, EvolInstructResult
    from .filters import (
        RougeLIndex,
        complexity_filter,
        greedy_novelty,
        greedy_novelty_fast,
        length_filter,
        minhash_dedup_filter,
        rouge_l_f,
        rouge_novelty_filter,
        run_filters,
        split_filtered,
    )
    from .hub import HubPushError, push_to_hub, write_repo
    from .io import EXAMPLE_SEEDS, load_seed_dataset, save_run
    from .metrics import load_rouge_l
    from .prompts import render_messages, template_names
    from .refine import Refine, RefineConfig, RefineResult
    from .report import build_report, write_report
    from .results import StepResult
    from .review import ReviewConfig, apply_review, save_reviewed, serve_review
    from .run_folder import RunFolder
    from .self_instruct import SelfInstruct, SelfInstructConfig, SelfInstructResult, parse_instruction_list
