"""Generation engine: the :class:`Engine` port and its backends (chosen by name, imported when chosen).

Names are loaded on first access (the configuration classes need no torch; the engines do).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "continuous": ["ContinuousBatcher"],
        "default_model": ["DEFAULT_MODEL_ID", "DefaultModelNotInstalledError", "default_model_path"],
        "distributed": ["generate_distributed"],
        "engine": ["GenerationEngine", "load_engine"],
        "engine_config": ["BACKENDS", "EngineConfig", "SamplingParams"],
        "protocol": [
            "DEFAULT_CONCURRENCY",
            "Engine",
            "EngineStats",
            "GenerationOutput",
            "Prompt",
            "describe_engines",
            "engine_concurrency",
            "format_chat_prompt",
        ],
        "runner": ["Request"],
        "selection": ["BackendChoice", "choose_backend"],
        "server": ["ServerEngine", "ServerError"],
    },
)


if TYPE_CHECKING:  # pragma: no cover
    from .continuous import ContinuousBatcher
    from .default_model import DEFAULT_MODEL_ID, DefaultModelNotInstalledError, default_model_path
    from .distributed import generate_distributed
    from .engine import GenerationEngine, load_engine
    from .engine_config import BACKENDS, EngineConfig, SamplingParams
    from .protocol import (
        DEFAULT_CONCURRENCY,
        Engine,
        EngineStats,
        GenerationOutput,
        Prompt,
        describe_engines,
        engine_concurrency,
        format_chat_prompt,
    )
    from .runner import Request
    from .selection import BackendChoice, choose_backend
    from .server import ServerEngine, ServerError
