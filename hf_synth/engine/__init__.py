"""Generation engine: load a causal LM (or the embedded default) and generate in batches."""

from .continuous import ContinuousBatcher
from .default_model import DEFAULT_MODEL_ID, DefaultModelNotInstalledError, default_model_path
from .distributed import generate_distributed
from .engine import EngineStats, GenerationEngine, GenerationOutput, Prompt
from .engine_config import BACKENDS, EngineConfig, SamplingParams

__all__ = [
    "BACKENDS",
    "ContinuousBatcher",
    "DEFAULT_MODEL_ID",
    "DefaultModelNotInstalledError",
    "EngineConfig",
    "EngineStats",
    "GenerationEngine",
    "GenerationOutput",
    "Prompt",
    "SamplingParams",
    "default_model_path",
    "generate_distributed",
]
