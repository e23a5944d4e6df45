"""oneDNN's linear on the CPU, and its packed weight layout, where this torch build has them.

Both are private operators of torch's ``mkldnn`` namespace (called through the dispatcher,
``torch.ops.mkldnn``); each is checked against ``F.linear`` on a slice of the real weight before it is
used, so a build where they are missing or disagree runs ``F.linear`` instead.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def linear_available(weight: torch.Tensor) -> bool:
    """Whether oneDNN's linear runs on tensors like ``weight`` and agrees with ``F.linear``."""
    if weight.device.type != "cpu" or weight.dtype not in (torch.float32, torch.bfloat16):
        return False
    if not torch.backends.mkldnn.is_available() or not hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        return False
    try:  # the private op must exist and agree with F.linear
        x = torch.randn(4, weight.shape[1], dtype=weight.dtype)
        w = weight[:8]
        out = torch.ops.mkldnn._linear_pointwise(x, w, None, "none", [], "")
        return torch.allclose(out, F.linear(x, w), rtol=1e-4, atol=1e-4)
    except (RuntimeError, AttributeError):
        return False


def packing(weight: torch.Tensor, rows: int) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """A function that packs a weight matrix for oneDNN's linear, or ``None`` where that is unavailable.

    The private op must exist and the packed product agree with ``F.linear`` (checked on a slice of
    ``weight``); ``rows`` is the batch size the packed layout is tuned for.
    """
    ops = torch.ops.mkldnn
    if not hasattr(ops, "_reorder_linear_weight"):
        return None

    def pack(w: torch.Tensor) -> torch.Tensor:
        return ops._reorder_linear_weight(w.contiguous(), rows)

    try:
        x = torch.randn(4, weight.shape[1], dtype=weight.dtype)
        w = weight[:40]
        out = ops._linear_pointwise(x, pack(w), None, "none", [], "")
        return pack if torch.allclose(out, F.linear(x, w), rtol=1e-4, atol=1e-4) else None
    except (RuntimeError, AttributeError):
        return None
