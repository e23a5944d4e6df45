"""Which backend runs a model: the one place where ``backend="auto"`` is decided, and where backends
are imported (each only when chosen).

``auto``:

* CUDA and ``vllm`` installed -> ``vllm``;
* a Llama-family architecture -> ``continuous`` (hf-synth's continuous batching: the CPU runtime with
  packed oneDNN weights and compiled kernels on the CPU, CUDA graphs of the decode step on a GPU);
* otherwise, on CUDA -> ``transformers-paged`` (transformers' ``generate_batch``) where this
  transformers has it, else ``transformers`` (``model.generate`` on fixed batches).
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass

from .engine_config import BACKENDS
from .support import config_problem

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackendChoice:
    """A resolved backend and why it was chosen (logged, and kept in ``EngineConfig``'s record)."""

    name: str
    reason: str


def vllm_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


def choose_backend(
    requested: str,
    device_type: str,
    config,
    *,
    vllm_available: bool = False,
    paged_available: bool = True,
) -> BackendChoice:
    """Resolve ``requested`` (one of :data:`BACKENDS`) for a model with ``config`` on ``device_type``.

    An explicit backend is returned as it is, except ``continuous`` for an architecture it cannot run
    (a ``ValueError`` that names the fix).
    """
    if requested not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {requested!r}")
    problem = config_problem(config) if config is not None else "no model config"
    if requested != "auto":
        if requested == "continuous" and problem:
            raise ValueError(
                f"backend='continuous' cannot run this model: {problem}; use 'transformers' or 'auto'"
            )
        return BackendChoice(requested, "requested")
    if device_type == "cuda" and vllm_available:
        return BackendChoice("vllm", "CUDA device and vllm is installed")
    if problem is None:
        how = "CUDA graphs" if device_type == "cuda" else f"{device_type} runtime"
        return BackendChoice("continuous", f"Llama-family architecture ({how})")
    if device_type == "cuda" and paged_available:
        return BackendChoice("transformers-paged", f"{problem}: transformers' continuous batching")
    return BackendChoice("transformers", f"{problem}: model.generate on fixed batches")


def default_batch_size(backend: str, device_type: str) -> int:
    """Sequences in flight when ``EngineConfig.batch_size`` is left to the backend."""
    if backend == "continuous":
        return 256 if device_type == "cuda" else 64
    if backend == "transformers":
        return 64 if device_type == "cuda" else 16
    return 256


def make_runner(backend: str, model, *, pad_token_id: int, eos_ids, batch_size: int):
    """The token runner of ``backend`` for a loaded transformers model (imports only that backend)."""
    if backend == "continuous":
        from .continuous import ContinuousBatcher

        return ContinuousBatcher(model, batch_size, eos_ids)
    if backend == "transformers":
        from .fixed_batches import FixedBatchRunner

        return FixedBatchRunner(model, pad_token_id, eos_ids, batch_size)
    if backend == "transformers-paged":
        from .paged import PagedRunner

        return PagedRunner(model, pad_token_id, eos_ids, batch_size)
    raise ValueError(
        f"GenerationEngine runs backends 'continuous', 'transformers' and 'transformers-paged', not "
        f"{backend!r}; load vLLM with GenerationEngine.from_config(EngineConfig(backend='vllm'))"
    )
