"""hf-synth: synthetic fine-tuning datasets on top of datasets, transformers and TRL.

The public API, in pipeline order: the generation engine, Self-Instruct, Evol-Instruct, filters, I/O and
cards.
"""

from .cards import evol_instruct_card, self_instruct_card
from .checkpoint import Checkpointer, CheckpointMismatchError
from .engine import (
    DEFAULT_MODEL_ID,
    DefaultModelNotInstalledError,
    EngineConfig,
    GenerationEngine,
    GenerationOutput,
    SamplingParams,
    default_model_path,
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
from .io import EXAMPLE_SEEDS, load_seed_dataset, save_run
from .metrics import load_rouge_l
from .prompts import render_messages, template_names
from .self_instruct import SelfInstruct, SelfInstructConfig, SelfInstructResult, parse_instruction_list

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_MODEL_ID",
    "EXAMPLE_SEEDS",
    "CheckpointMismatchError",
    "Checkpointer",
    "DefaultModelNotInstalledError",
    "EngineConfig",
    "EvolInstruct",
    "EvolInstructConfig",
    "EvolInstructResult",
    "GenerationEngine",
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
