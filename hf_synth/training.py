"""Helpers for training on hf-synth data with TRL (used by scripts/sft.py and scripts/dpo.py)."""

from __future__ import annotations

from typing import Any


def cpu_friendly_defaults() -> dict[str, Any]:
    """Defaults that let TRL's configs run on a machine without a GPU (TRL defaults to bf16, which
    transformers refuses on CPU); explicit flags or a --config file still override them."""
    import torch

    gpu = torch.cuda.is_available()
    return {"bf16": gpu and torch.cuda.is_bf16_supported(), "use_cpu": not gpu, "report_to": "none"}
