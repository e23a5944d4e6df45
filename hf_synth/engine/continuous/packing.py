"""The model's weights in the layout the continuous batcher runs them in.

q/k/v and gate/up are fused into one matrix each (the layers' parameters become views into them: no
extra memory). On the CPU every projection runs through oneDNN where it is available; whether a
projection's weight is also packed into oneDNN's blocked layout (a copy; 1.2-1.5x the speed of unpacked
oneDNN at these shapes, itself about twice MKL's) is measured per shape on this machine
(:mod:`..cpu.tuning`), and skipped when the copy would take more than half the memory left.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..cpu.memory import memory_available
from ..cpu.onednn import linear_available as onednn_linear_available
from ..cpu.onednn import packing as onednn_packing

logger = logging.getLogger(__name__)

#: The projections of the model, by the name the CPU tuning and the logs use.
PROJECTIONS = ("qkv", "o", "gate_up", "down", "lm_head")


def projection_bytes(model) -> int:
    """Bytes of the weights that packing all of them would copy: every decoder projection and the output
    layer."""
    total = model.get_output_embeddings().weight.nbytes
    for layer in model.model.layers:
        for module in (layer.self_attn, layer.mlp):
            total += sum(m.weight.nbytes for m in module.children() if isinstance(m, torch.nn.Linear))
    return total


def fuse(linears: Sequence[torch.nn.Linear], with_bias: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Concatenate linear layers' weights and make the layers' parameters views into the result."""
    weight = torch.cat([lin.weight.detach() for lin in linears], dim=0).contiguous()
    bias = torch.cat([lin.bias.detach() for lin in linears], dim=0).contiguous() if with_bias else None
    start = 0
    for lin in linears:
        rows = lin.weight.shape[0]
        lin.weight = torch.nn.Parameter(weight[start : start + rows], requires_grad=False)
        if bias is not None:
            lin.bias = torch.nn.Parameter(bias[start : start + rows], requires_grad=False)
        start += rows
    return weight, bias


class Projection:
    """One projection's weight in the layout its method wants, and the call that applies it.

    ``method`` is ``"packed"`` (oneDNN, weight packed once into its blocked layout: a copy),
    ``"onednn"`` (oneDNN on the plain weight) or ``"torch"`` (``F.linear``).
    """

    __slots__ = ("weight", "bias", "method")

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, method: str, pack=None) -> None:
        self.method = method
        self.weight = pack(weight) if method == "packed" else weight
        self.bias = bias

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.method == "torch":
            return F.linear(x, self.weight, self.bias)
        return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "none", [], "")


class Layer:
    """One decoder layer's tensors, fused into few large matrix products, each run by its chosen method."""

    def __init__(self, layer, n_heads: int, n_kv: int, head_dim: int, methods: dict, pack=None) -> None:
        attn, mlp = layer.self_attn, layer.mlp
        has_bias = getattr(attn.q_proj, "bias", None) is not None
        w_qkv, b_qkv = fuse([attn.q_proj, attn.k_proj, attn.v_proj], has_bias)
        w_gate_up, _ = fuse([mlp.gate_proj, mlp.up_proj], False)
        self.qkv = Projection(w_qkv, b_qkv, methods["qkv"], pack)
        self.o = Projection(attn.o_proj.weight.detach(), None, methods["o"], pack)
        self.gate_up = Projection(w_gate_up, None, methods["gate_up"], pack)
        self.down = Projection(mlp.down_proj.weight.detach(), None, methods["down"], pack)
        self.ln_in = layer.input_layernorm.weight.detach()
        self.ln_post = layer.post_attention_layernorm.weight.detach()
        self.eps_in = layer.input_layernorm.variance_epsilon
        self.eps_post = layer.post_attention_layernorm.variance_epsilon
        self.q_size = n_heads * head_dim
        self.kv_size = n_kv * head_dim
        self.intermediate = mlp.gate_proj.weight.shape[0]
        self.scaling = attn.scaling


class PackedWeights:
    """Every projection of ``model`` as a :class:`Projection`, fused and (on the CPU) in the layout that
    runs fastest at ``slots`` rows: ``layers`` (one :class:`Layer` each), ``lm_head``, and ``methods``
    (the method of each of :data:`PROJECTIONS`)."""

    def __init__(self, model, slots: int, n_heads: int, n_kv: int, head_dim: int) -> None:
        lm_head = model.get_output_embeddings().weight.detach()
        self.vocab_size = lm_head.shape[0]
        self.dtype = lm_head.dtype
        self.use_onednn = onednn_linear_available(lm_head)
        pack = onednn_packing(lm_head, slots) if self.use_onednn else None
        if pack is not None:
            copy, available = projection_bytes(model), memory_available()
            if available is not None and copy > available // 2:
                logger.info(
                    "Not packing the weights for oneDNN: the copy (%d MB) would take more than half of the "
                    "%d MB of memory available; projections run unpacked (slower)",
                    copy >> 20,
                    available >> 20,
                )
                pack = None
        self.methods = self._choose_methods(model, slots, pack)
        self.packed = "packed" in self.methods.values()
        self.lm_head = Projection(lm_head, None, self.methods["lm_head"], pack)
        self.layers = [
            Layer(layer, n_heads, n_kv, head_dim, self.methods, pack) for layer in model.model.layers
        ]

    def _choose_methods(self, model, slots: int, pack) -> dict[str, str]:
        """How each projection runs: on the CPU with oneDNN, the fastest of the methods this build offers
        at ``slots`` rows, timed once per machine (:mod:`..cpu.tuning`); elsewhere ``F.linear``."""
        if not self.use_onednn:
            return dict.fromkeys(PROJECTIONS, "torch")
        from ..cpu.tuning import choose_methods

        layer = model.model.layers[0]
        attn, mlp = layer.self_attn, layer.mlp
        hidden = attn.q_proj.weight.shape[1]
        qkv = sum(m.weight.shape[0] for m in (attn.q_proj, attn.k_proj, attn.v_proj))
        shapes = {
            "qkv": (qkv, hidden),
            "o": tuple(attn.o_proj.weight.shape),
            "gate_up": (2 * mlp.gate_proj.weight.shape[0], hidden),
            "down": tuple(mlp.down_proj.weight.shape),
            "lm_head": (self.vocab_size, hidden),
        }
        offered = ("packed", "onednn", "torch") if pack is not None else ("onednn", "torch")
        return choose_methods(shapes, slots, self.dtype, offered, pack)
