"""Helpers for training on hf-synth data with TRL (used by scripts/sft.py and scripts/dpo.py)."""

from __future__ import annotations

from typing import Any


def cpu_friendly_defaults() -> dict[str, Any]:
    """Defaults that let TRL's configs run on a machine without a GPU (TRL defaults to bf16, which
    transformers refuses on CPU); explicit flags or a --config file still override them."""
    import torch

    gpu = torch.cuda.is_available()
    return {"bf16": gpu and torch.cuda.is_bf16_supported(), "use_cpu": not gpu, "report_to": "none"}


def script_defaults() -> dict[str, Any]:
    """The defaults of ``scripts/sft.py`` and ``scripts/dpo.py``: :func:`cpu_friendly_defaults`, activation
    checkpointing on under its current name (TRL turns it on under the old one, which transformers warns
    is deprecated), the training bar shown whatever the log level (transformers hides it when its logger is
    quieter than WARNING, as ``TRANSFORMERS_VERBOSITY=error`` makes it), and NaN/inf step losses counted
    in ``train_loss`` (transformers leaves them out by default, so an all-NaN run reported 0.0)."""
    return {
        **cpu_friendly_defaults(),
        "activation_checkpointing": True,
        "disable_tqdm": False,
        "logging_nan_inf_filter": False,
    }
