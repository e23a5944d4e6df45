"""Generation engine: the :class:`Engine` port and its backends (chosen by name, imported when chosen)."""

from .default_model import DEFAULT_MODEL_ID, DefaultModelNotInstalledError, default_model_path
from .distributed import generate_distributed
from .engine import GenerationEngine, load_engine
from .engine_config import BACKENDS, EngineConfig, SamplingParams
from .protocol import Engine, EngineStats, GenerationOutput, Prompt, describe_engines, format_chat_prompt
from .runner import Request
from .selection import BackendChoice, choose_backend

__all__ = [
    "BACKENDS",
    "DEFAULT_MODEL_ID",
    "BackendChoice",
    "DefaultModelNotInstalledError",
    "Engine",
    "EngineConfig",
    "EngineStats",
    "GenerationEngine",
    "GenerationOutput",
    "Prompt",
    "Request",
    "SamplingParams",
    "choose_backend",
    "default_model_path",
    "describe_engines",
    "format_chat_prompt",
    "generate_distributed",
    "load_engine",
]


def __getattr__(name: str):
    # The continuous batcher pulls in numba and its kernels: imported only when someone asks for it.
    if name == "ContinuousBatcher":
        from .continuous import ContinuousBatcher

        return ContinuousBatcher
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
