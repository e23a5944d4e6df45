"""hf-synth: synthetic fine-tuning datasets on top of datasets, transformers and TRL.

The public API: the generation engine, Self-Instruct, Evol-Instruct, diversity strategies, filters and
curation, I/O, cards, Hub publishing and the quality report.
"""

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
from .curation import classify_skills, coverage_report
from .engine import (
    DEFAULT_MODEL_ID,
    DefaultModelNotInstalledError,
    Engine,
    EngineConfig,
    GenerationEngine,
    GenerationOutput,
    SamplingParams,
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
from .report import build_report, write_report
from .self_instruct import SelfInstruct, SelfInstructConfig, SelfInstructResult, parse_instruction_list

__version__ = "0.1.0"

__all__ = [
    "HubPushError",
    "NegativeConfig",
    "ParaphraseConfig",
    "back_translate",
    "blend",
    "build_report",
    "classify_skills",
    "coverage_report",
    "fill_template",
    "paraphrase",
    "preference_pairs",
    "propose_slot_values",
    "push_to_hub",
    "write_report",
    "write_repo",
    "DEFAULT_MODEL_ID",
    "EXAMPLE_SEEDS",
    "CheckpointMismatchError",
    "Checkpointer",
    "DefaultModelNotInstalledError",
    "Engine",
    "EngineConfig",
    "EvolInstruct",
    "EvolInstructConfig",
    "EvolInstructResult",
    "GenerationEngine",
    "generate_distributed",
    "load_engine",
    "GenerationOutput",
    "RougeLIndex",
    "SamplingParams",
    "SelfInstruct",
    "SelfInstructConfig",
    "SelfInstructResult",
    "default_model_path",
    "evol_instruct_card",
    "complexity_filter",
    "greedy_novelty",
    "greedy_novelty_fast",
    "length_filter",
    "minhash_dedup_filter",
    "load_rouge_l",
    "load_seed_dataset",
    "parse_instruction_list",
    "render_messages",
    "rouge_l_f",
    "rouge_novelty_filter",
    "run_filters",
    "save_run",
    "self_instruct_card",
    "split_filtered",
    "template_names",
]
