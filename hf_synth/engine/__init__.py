"""Generation engine: load a causal LM (or the embedded default) and generate in batches."""

from .default_model import DEFAULT_MODEL_ID, DefaultModelNotInstalledError, default_model_path
from .engine import EngineStats, GenerationEngine, GenerationOutput, Prompt
from .engine_config import EngineConfig, SamplingParams

__all__ = [
    "DEFAULT_MODEL_ID",
    "DefaultModelNotInstalledError",
    "EngineConfig",
    "EngineStats",
    "GenerationEngine",
    "GenerationOutput",
    "Prompt",
    "SamplingParams",
    "default_model_path",
]
