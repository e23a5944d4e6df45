"""What hf-synth's continuous batcher can run: the model types and rotary variants it supports.

Read by backend selection (:mod:`.selection`, to decide ``auto``) and by the batcher itself
(:mod:`.continuous`, to refuse a model and to choose its decode mode); kept apart from both so that
neither imports the other for them.
"""

from __future__ import annotations

#: ``config.model_type`` values whose decoder layers hf-synth's continuous batcher runs itself (pre-norm,
#: RMSNorm, rotary attention with optional q/k/v bias, gated SiLU MLP).
SUPPORTED_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2"})

#: Rotary embedding variants whose tables do not depend on the sequence (precomputed once on a GPU).
STATIC_ROPE_TYPES = frozenset({"default", "linear", "llama3"})


def config_problem(config) -> str | None:
    """Why a model with this ``PretrainedConfig`` cannot use continuous batching, or ``None``."""
    model_type = getattr(config, "model_type", None)
    if model_type not in SUPPORTED_MODEL_TYPES:
        return f"model type {model_type!r} is not one of {sorted(SUPPORTED_MODEL_TYPES)}"
    if getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True):
        return "sliding-window attention is not supported"
    if getattr(config, "hidden_act", "silu") != "silu":
        return f"activation {config.hidden_act!r} is not silu"
    if getattr(config, "mlp_bias", False):
        return "MLP projections with bias are not supported"
    return None
