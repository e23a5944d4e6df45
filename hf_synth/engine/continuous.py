"""Continuous batching for Llama-family decoders: the engine's fast path.

``transformers``' ``generate`` decodes a fixed batch until its longest member ends, grows its KV cache by
concatenation every step and recomputes shared prompt prefixes. :class:`ContinuousBatcher` runs the same
model weights with:

* a preallocated KV cache of ``slots`` rows; a finished sequence's row is refilled with the next waiting
  prompt at once, so the batch stays full; when no prompt waits, live rows are moved to the front so that
  every step works on a dense block;
* a per-slot position, so sequences of different lengths decode together without padding;
* prompt-prefix reuse: prompts are admitted in token order, and the KV of the prefix a prompt shares with
  the previous one (chat-template header, template preamble) is copied instead of recomputed;
* fused q/k/v and gate/up projections; on the CPU every projection runs through oneDNN with its weights
  packed once into oneDNN's blocked layout (1.2-1.5x the speed of unpacked oneDNN at these shapes, itself
  about twice MKL's; same float32 arithmetic, one extra copy of the weights), elsewhere the fused weights
  are views into the model's own parameters (no extra memory);
* on the CPU, compiled kernels for decode attention (:mod:`.cpu.decode_attention`) and for the element-wise
  steps of a layer (:mod:`.cpu.fused`);
* a KV cache in lazily committed zero pages on the CPU whose slot pages are handed back when a new
  sequence moves in, so memory follows the tokens really held;
* sampling with transformers' semantics (repetition penalty, temperature, top-k, top-p) and one random
  stream per prompt, so a prompt's text does not depend on which other prompts share its batch;
* on a GPU (``static`` mode), a decode step of fixed shapes: every slot holds its whole sequence (a
  shared prefix is computed once and copied into its members' slots), the step reads the cache up to a
  length bucket and runs a row bucket of slots, and each (rows, length) bucket is captured once as a CUDA
  graph (:mod:`.cuda_graphs`) and replayed, so a step is a single launch instead of hundreds.

Every dtype runs (float32, bfloat16, float16): the compiled CPU kernels and oneDNN's packed weights are
used where they apply (float32 on the CPU), PyTorch operations elsewhere, in the model's dtype.

Greedy decoding gives the same tokens as ``model.generate`` up to float rounding (the test suite compares
texts). Architectures other than the ones in :data:`SUPPORTED_MODEL_TYPES` use plain ``generate``.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .cpu.decode_attention import DecodeAttention, check_kernels
from .cpu.decode_attention import available as compiled_kernels_available
from .cpu.fused import add_rms_norm, rope, rope_store
from .cpu.threads import ThreadGovernor
from .cuda_graphs import StepGraphs
from .engine_config import SamplingParams
from .runner import Request
from .support import STATIC_ROPE_TYPES, SUPPORTED_MODEL_TYPES, config_problem

logger = logging.getLogger(__name__)

#: Prefixes shorter than this are recomputed rather than copied (copying has a fixed cost).
MIN_SHARED_PREFIX = 8

#: top-p looks for the nucleus among this many most likely tokens first (a full sort is slow on the CPU).
_TOP_P_CANDIDATES = 512


_ALLOCATOR_TUNED = False


def _keep_large_allocations() -> None:
    """Make glibc serve large temporaries from its heap instead of fresh mmap()s.

    Every prefill allocates activation matrices of tens of MB; by default glibc maps each one anew and
    the kernel zero-fills its pages on first touch, which cost about a tenth of the run time in our
    benchmark. Raising the mmap and trim thresholds (process-wide, once) keeps those pages. Only on
    glibc; elsewhere nothing happens.
    """
    global _ALLOCATOR_TUNED
    if _ALLOCATOR_TUNED:
        return
    _ALLOCATOR_TUNED = True
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        libc.mallopt(m_mmap_threshold, 256 * 1024 * 1024)
        libc.mallopt(m_trim_threshold, 512 * 1024 * 1024)
    except (OSError, AttributeError):  # not glibc
        logger.debug("mallopt unavailable; large allocations stay mmap-backed")


def _cuda_attention_backends() -> list | None:
    """SDPA's flash, memory-efficient and math kernels (the ones that need no per-shape plan), or
    ``None`` where this torch cannot restrict SDPA (it then chooses itself)."""
    try:
        from torch.nn.attention import SDPBackend
    except ImportError:  # pragma: no cover - torch < 2.3
        return None
    return [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]


def _attention_kernels(backends: list | None):
    """A context in which SDPA uses only ``backends`` (nothing changes for ``None``)."""
    if not backends:
        return contextlib.nullcontext()
    from torch.nn.attention import sdpa_kernel

    return sdpa_kernel(backends)


def unsupported_reason(model) -> str | None:
    """Why ``model`` cannot use continuous batching, or ``None`` when it can."""
    problem = config_problem(getattr(model, "config", None))
    if problem:
        return problem
    layers = getattr(getattr(model, "model", None), "layers", None)
    if not layers or not hasattr(layers[0], "self_attn") or not hasattr(layers[0].mlp, "gate_proj"):
        return "decoder layers do not have the Llama layout"
    if getattr(layers[0].mlp.gate_proj, "bias", None) is not None:
        return "MLP projections with bias are not supported"
    if getattr(layers[0].self_attn.o_proj, "bias", None) is not None:
        return "attention output projection with bias is not supported"
    if not hasattr(model.model, "rotary_emb"):
        return "the model has no shared rotary embedding module"
    return None


def _onednn_linear_available(weight: torch.Tensor) -> bool:
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


def _onednn_packing(weight: torch.Tensor, rows: int) -> Callable[[torch.Tensor], torch.Tensor] | None:
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


def _memory_available() -> int | None:
    """Bytes the system can still hand out (``MemAvailable``), or ``None`` where that is unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _projection_bytes(model) -> int:
    """Bytes of the weights that packing all of them would copy: every decoder projection and the output
    layer."""
    total = model.get_output_embeddings().weight.nbytes
    for layer in model.model.layers:
        for module in (layer.self_attn, layer.mlp):
            total += sum(m.weight.nbytes for m in module.children() if isinstance(m, torch.nn.Linear))
    return total


def _fuse(linears: Sequence[torch.nn.Linear], with_bias: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
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


#: The projections of the model, by the name the CPU tuning and the logs use.
PROJECTIONS = ("qkv", "o", "gate_up", "down", "lm_head")


class _Projection:
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


class _Layer:
    """One decoder layer's tensors, fused into few large matrix products, each run by its chosen method."""

    def __init__(self, layer, n_heads: int, n_kv: int, head_dim: int, methods: dict, pack=None) -> None:
        attn, mlp = layer.self_attn, layer.mlp
        has_bias = getattr(attn.q_proj, "bias", None) is not None
        w_qkv, b_qkv = _fuse([attn.q_proj, attn.k_proj, attn.v_proj], has_bias)
        w_gate_up, _ = _fuse([mlp.gate_proj, mlp.up_proj], False)
        self.qkv = _Projection(w_qkv, b_qkv, methods["qkv"], pack)
        self.o = _Projection(attn.o_proj.weight.detach(), None, methods["o"], pack)
        self.gate_up = _Projection(w_gate_up, None, methods["gate_up"], pack)
        self.down = _Projection(mlp.down_proj.weight.detach(), None, methods["down"], pack)
        self.ln_in = layer.input_layernorm.weight.detach()
        self.ln_post = layer.post_attention_layernorm.weight.detach()
        self.eps_in = layer.input_layernorm.variance_epsilon
        self.eps_post = layer.post_attention_layernorm.variance_epsilon
        self.q_size = n_heads * head_dim
        self.kv_size = n_kv * head_dim
        self.intermediate = mlp.gate_proj.weight.shape[0]
        self.scaling = attn.scaling


def _rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    # The operations of transformers' LlamaRMSNorm, in its order.
    dtype = x.dtype
    x = x.to(torch.float32)
    variance = x.pow(2).mean(-1, keepdim=True)
    return weight * (x * torch.rsqrt(variance + eps)).to(dtype)


def _fused_rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    # torch's rms_norm computes the same steps (float32 inside, cast back, times the weight) in one kernel
    # on CUDA; transformers' layer is eight.
    return F.rms_norm(x, weight.shape, weight, eps)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return (x * cos) + (rotated * sin)


def _zeros(shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, object]:
    """A zero tensor; on the CPU its pages are committed only when written (RSS follows real use)."""
    if device.type != "cpu":
        return torch.zeros(shape, dtype=dtype, device=device), None
    count = 1
    for dim in shape:
        count *= dim
    nbytes = count * torch.empty((), dtype=dtype).element_size()
    buffer = mmap.mmap(-1, max(nbytes, 1), flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    tensor = torch.frombuffer(buffer, dtype=dtype, count=count).view(shape)
    return tensor, buffer


class ContinuousBatcher:
    """Decode many prompts with a fixed number of KV-cache slots that are refilled as sequences end.

    Args:
        model: A loaded causal LM whose type is in :data:`SUPPORTED_MODEL_TYPES` (checked; see
            :func:`unsupported_reason`). Its q/k/v and gate/up weights become views of fused tensors.
            On the CPU each projection runs with the method measured fastest for its shape on this
            machine (:mod:`.cpu.tuning`; ``methods`` records the choice).
        slots: How many sequences decode together (the batch size).
        eos_ids: Token ids that end a sequence.
        static: Every slot holds its whole sequence and a decode step attends it with one softmax (see the
            module docstring). ``None``: on CUDA, where the steps are captured as CUDA graphs, and for
            half-precision models on the CPU (the compiled CPU kernels are float32-only; one softmax over
            the whole sequence is what ``model.generate`` computes).

    Attributes:
        cuda_graphs: Capture static steps as CUDA graphs (on CUDA devices; set ``False`` to run eagerly).
        bucket_steps: Run static steps at bucketed shapes even when not capturing (the test suite uses it
            to check on the CPU what graphs replay on a GPU).
        governor: On the CPU, the :class:`~.cpu.threads.ThreadGovernor` that gives threads up while other
            processes keep cores busy (``None`` turns that off).
    """

    def __init__(self, model, slots: int, eos_ids: Sequence[int], static: bool | None = None) -> None:
        reason = unsupported_reason(model)
        if reason is not None:
            raise ValueError(
                f"Continuous batching cannot run this model: {reason}; use backend='transformers'"
            )
        if slots < 1:
            raise ValueError(f"slots must be >= 1, got {slots}")
        if not eos_ids:
            raise ValueError("eos_ids must name at least one token")
        config = model.config
        self.slots = slots
        self.eos_ids = frozenset(int(t) for t in eos_ids)
        self.n_heads = config.num_attention_heads
        self.n_kv = getattr(config, "num_key_value_heads", None) or self.n_heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.n_heads
        self.max_positions = getattr(config, "max_position_embeddings", None)
        inner = model.model
        self.embed = inner.embed_tokens.weight.detach()
        self.norm_w = inner.norm.weight.detach()
        self.norm_eps = inner.norm.variance_epsilon
        lm_head = model.get_output_embeddings().weight.detach()
        self.vocab_size = lm_head.shape[0]
        self.rotary = inner.rotary_emb
        self.device = self.embed.device
        self.dtype = self.embed.dtype
        rope_type = getattr(self.rotary, "rope_type", "default")
        if static is None:
            static = self.device.type == "cuda" or self.dtype != torch.float32
        if static and rope_type not in STATIC_ROPE_TYPES:
            logger.info(
                "Rotary embedding %r depends on the sequence; decoding without fixed shapes", rope_type
            )
            static = False
        self.static = static
        self.use_onednn = _onednn_linear_available(lm_head)
        pack = _onednn_packing(lm_head, slots) if self.use_onednn else None
        if pack is not None:
            copy, available = _projection_bytes(model), _memory_available()
            if available is not None and copy > available // 2:
                logger.info(
                    "Not packing the weights for oneDNN: the copy (%d MB) would take more than half of the "
                    "%d MB of memory available; projections run unpacked (slower)",
                    copy >> 20,
                    available >> 20,
                )
                pack = None
        self.methods = self._choose_methods(model, slots, pack)
        self.packed_weights = "packed" in self.methods.values()
        self.lm_head = _Projection(lm_head, None, self.methods["lm_head"], pack)
        self.layers = [
            _Layer(layer, self.n_heads, self.n_kv, self.head_dim, self.methods, pack)
            for layer in inner.layers
        ]
        self.use_kernel = compiled_kernels_available(lm_head) and not static
        if self.use_kernel:
            problem = check_kernels(self.n_kv, self.n_heads // self.n_kv, self.head_dim)
            if problem:
                logger.warning("Compiled CPU kernels unavailable (%s); using PyTorch attention", problem)
                self.use_kernel = False
        if self.device.type == "cpu":
            _keep_large_allocations()
        #: Tokens run together in one prefill pass at most (bounds activation memory).
        self.prefill_chunk = 16384 if self.device.type == "cuda" else 2048
        self.prefill_tokens = 0
        self.reused_prefix_tokens = 0
        self.graphs: StepGraphs | None = None  # static mode: the cache, rope tables and captured steps
        self.cuda_graphs = self.device.type == "cuda"
        self.bucket_steps = False
        on_cuda = self.device.type == "cuda"
        #: One fused RMSNorm kernel (torch >= 2.4) instead of transformers' eight operations; on CUDA, where
        #: launches dominate a small model's step (the CPU keeps its compiled kernels and measured speed).
        self._norm = _fused_rms_norm if on_cuda and hasattr(F, "rms_norm") else _rms_norm
        #: Static mode: run all the prompts of a prefill pass through one attention call per layer
        #: (padded to the longest, masked) instead of one per prompt. On by default on CUDA.
        self.batched_prefill = on_cuda
        #: Skip the host synchronisations sampling needs only to save work on the CPU (on CUDA the work
        #: is cheaper than waiting for the GPU).
        self.sync_free = on_cuda
        #: The attention kernels SDPA may use on CUDA, in order; cuDNN's is left out: it builds a plan per
        #: new shape (every prompt length of a prefill, every step of an eager decode).
        self.attention_backends = _cuda_attention_backends() if on_cuda else None
        # On the CPU, fewer threads while other processes keep cores busy (see .cpu.threads).
        self.governor = ThreadGovernor(torch.get_num_threads()) if self.device.type == "cpu" else None
        logger.info(
            "Continuous batching on %s in %s: %s, %s weights, %s attention",
            self.device,
            str(self.dtype).removeprefix("torch."),
            ("fixed-shape steps as CUDA graphs" if self.device.type == "cuda" else "whole-sequence slots")
            if static
            else "shared-prefix arena",
            ", ".join(f"{name} {method}" for name, method in self.methods.items()),
            "compiled CPU"
            if self.use_kernel
            else f"PyTorch SDPA ({', '.join(b.name for b in self.attention_backends)})"
            if self.attention_backends
            else "PyTorch",
        )

    def _choose_methods(self, model, slots: int, pack) -> dict[str, str]:
        """How each projection runs: on the CPU with oneDNN, the fastest of the methods this build offers
        at ``slots`` rows, timed once per machine (:mod:`.cpu.tuning`); elsewhere ``F.linear``."""
        if not self.use_onednn:
            return dict.fromkeys(PROJECTIONS, "torch")
        from .cpu.tuning import choose_methods

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

    @property
    def batch_size(self) -> int:
        """The number of slots (the name every backend's runner shares)."""
        return self.slots

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self.slots = value

    # ------------------------------------------------------------------ model pieces
    def _rope(self, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """cos/sin of shape (rows, 1, head_dim) for a 1-D tensor of positions."""
        if self.graphs is not None:  # static mode: the tables hold every position of the cache
            return self.graphs.rope(positions)
        cos, sin = self.rotary(self.embed[:1], positions.view(1, -1))
        return cos[0].unsqueeze(1), sin[0].unsqueeze(1)

    def _qkv(self, layer: _Layer, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        rows = x.shape[0]
        if self.use_kernel:  # one compiled loop each for the norm and the rotation
            h = add_rms_norm(x, None, layer.ln_in, layer.eps_in, torch.empty_like(x))
            qkv = layer.qkv(h)
            return rope(qkv, cos[:, 0], sin[:, 0], self.n_heads, self.n_kv)
        h = self._norm(x, layer.ln_in, layer.eps_in)
        qkv = layer.qkv(h)
        qk, v = qkv.split([layer.q_size + layer.kv_size, layer.kv_size], dim=-1)
        # Queries and keys rotate together: one set of element-wise operations instead of two.
        qk = _rotate(qk.view(rows, self.n_heads + self.n_kv, self.head_dim), cos, sin)
        q, k = qk.split([self.n_heads, self.n_kv], dim=1)
        return q, k, v.view(rows, self.n_kv, self.head_dim)

    def _finish_layer(self, layer: _Layer, x: torch.Tensor, attn: torch.Tensor) -> torch.Tensor:
        """The residual, the MLP and its residual; ``x`` may be updated in place."""
        if self.use_kernel:
            h = add_rms_norm(x, layer.o(attn), layer.ln_post, layer.eps_post, torch.empty_like(x))
        else:
            x = x + layer.o(attn)
            h = self._norm(x, layer.ln_post, layer.eps_post)
        gate, up = layer.gate_up(h).split([layer.intermediate, layer.intermediate], dim=-1)
        return x.add_(layer.down(F.silu(gate).mul_(up)))

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self._norm(x, self.norm_w, self.norm_eps)).float()

    def _prefill(self, items: Sequence[_Prefill]) -> torch.Tensor:
        """Run several prompts (or shared prefixes) in one pass; return each item's last-token logits.

        Every item's tokens are packed into one matrix for the projections; attention runs per item over
        its shared prefix (``item.context``, already computed) and its own tokens, causally, or, with
        ``batched_prefill`` for items that fill cache slots, once for all of them (:meth:`_prefill_padded`).
        """
        if self.batched_prefill and len(items) > 1 and all(item.slot is not None for item in items):
            return torch.cat([self._prefill_padded(group) for group in _padded_groups(items)])
        sizes = [len(item.tokens) for item in items]
        ids = torch.tensor([t for item in items for t in item.tokens], device=self.device)
        positions = torch.cat(
            [
                torch.arange(item.start, item.start + n, device=self.device)
                for item, n in zip(items, sizes, strict=True)
            ]
        )
        cos, sin = self._rope(positions)
        x = F.embedding(ids, self.embed)
        masks = []
        for item, n in zip(items, sizes, strict=True):
            visible = torch.ones(n, item.start + n, dtype=torch.bool, device=self.device).tril(
                diagonal=item.start
            )
            masks.append(
                torch.zeros(visible.shape, dtype=self.dtype, device=self.device).masked_fill_(
                    ~visible, float("-inf")
                )
            )
        gqa = self.n_kv != self.n_heads
        for i, layer in enumerate(self.layers):
            q, k, v = self._qkv(layer, x, cos, sin)
            outputs = []
            offset = 0
            for item, n, mask in zip(items, sizes, masks, strict=True):
                k_item = k[offset : offset + n].transpose(0, 1)
                v_item = v[offset : offset + n].transpose(0, 1)
                item.k_target[i, :, :n] = k_item
                item.v_target[i, :, :n] = v_item
                if item.context is not None:
                    k_item = torch.cat([item.context.k[i], k_item], dim=1)
                    v_item = torch.cat([item.context.v[i], v_item], dim=1)
                out = F.scaled_dot_product_attention(
                    q[offset : offset + n].transpose(0, 1).unsqueeze(0),
                    k_item.unsqueeze(0),
                    v_item.unsqueeze(0),
                    attn_mask=mask,
                    scale=layer.scaling,
                    enable_gqa=gqa,
                )
                outputs.append(out[0].transpose(0, 1).reshape(n, -1))
                offset += n
            x = self._finish_layer(layer, x, torch.cat(outputs) if len(outputs) > 1 else outputs[0])
        self.prefill_tokens += sum(sizes)
        last = torch.tensor(sizes, device=self.device).cumsum(0) - 1
        return self._logits(x.index_select(0, last))

    def _prefill_padded(self, items: Sequence[_Prefill]) -> torch.Tensor:
        """:meth:`_prefill` of items whose targets are whole-sequence cache slots (static mode): each
        layer writes every item's keys and values into its slot with one indexed store, then one attention
        call covers all items, their queries padded to the longest item and each attending its own slot
        (the shared prefix already copied there) up to its position."""
        device = self.device
        sizes = [len(item.tokens) for item in items]
        width = max(sizes)
        keys = max(item.start + n for item, n in zip(items, sizes, strict=True))
        ids = torch.tensor([t for item in items for t in item.tokens], device=device)
        positions = torch.tensor(
            [item.start + t for item, n in zip(items, sizes, strict=True) for t in range(n)], device=device
        )
        token_slots = torch.tensor(
            [item.slot for item, n in zip(items, sizes, strict=True) for _ in range(n)], device=device
        )
        item_slots = torch.tensor([item.slot for item in items], device=device)
        dest = torch.tensor([j * width + t for j, n in enumerate(sizes) for t in range(n)], device=device)
        starts = torch.tensor([item.start for item in items], device=device)
        query_positions = starts.unsqueeze(1) + torch.arange(width, device=device)  # (items, width)
        # Query t of an item sees its slot's keys up to its own position (padded rows are dropped).
        visible = torch.arange(keys, device=device).view(1, 1, keys) <= query_positions.unsqueeze(2)
        mask = visible.unsqueeze(1)
        cos, sin = self._rope(positions)
        x = F.embedding(ids, self.embed)
        group = self.n_heads // self.n_kv
        n_items = len(items)
        for i, layer in enumerate(self.layers):
            q, k, v = self._qkv(layer, x, cos, sin)
            k_cache, v_cache = self.k_cache[i], self.v_cache[i]
            k_cache[token_slots, :, positions] = k
            v_cache[token_slots, :, positions] = v
            q_pad = q.new_zeros(n_items * width, self.n_heads, self.head_dim).index_copy_(0, dest, q)
            q_pad = q_pad.view(n_items, width, self.n_heads, self.head_dim).transpose(1, 2)
            k_items = k_cache[:, :, :keys].index_select(0, item_slots)
            v_items = v_cache[:, :, :keys].index_select(0, item_slots)
            if group > 1:  # explicit heads: the memory-efficient kernel takes a mask but not GQA
                k_items = k_items.repeat_interleave(group, dim=1)
                v_items = v_items.repeat_interleave(group, dim=1)
            out = F.scaled_dot_product_attention(q_pad, k_items, v_items, attn_mask=mask, scale=layer.scaling)
            out = out.transpose(1, 2).reshape(n_items * width, -1).index_select(0, dest)
            x = self._finish_layer(layer, x, out)
        self.prefill_tokens += sum(sizes)
        last = torch.tensor(sizes, device=device).cumsum(0) - 1
        return self._logits(x.index_select(0, last))

    def _decode(
        self, tokens: torch.Tensor, positions: torch.Tensor, local: torch.Tensor, groups
    ) -> torch.Tensor:
        """One step for slots ``0..live-1``.

        ``positions`` are absolute (for the rotary embedding), ``local`` index the slot's own cache (after
        its shared prefix); ``groups`` pairs each live shared prefix with the rows (a tensor) that use it.
        """
        live = tokens.shape[0]
        cos, sin = self._rope(positions)
        x = F.embedding(tokens, self.embed)
        if self.use_kernel:
            return self._decode_kernel(x, cos, sin, local, groups)
        length = int(local.max()) + 1
        rows = torch.arange(live, device=self.device)
        hidden = torch.arange(length, device=self.device) > local.unsqueeze(1)
        mask = torch.zeros(live, 1, 1, length, dtype=self.dtype, device=self.device)
        mask.masked_fill_(hidden.view(live, 1, 1, length), float("-inf"))
        group = self.n_heads // self.n_kv
        shape = (live, self.n_kv, group, self.head_dim)
        for i, layer in enumerate(self.layers):
            q, k, v = self._qkv(layer, x, cos, sin)
            k_cache, v_cache = self.k_cache[i], self.v_cache[i]
            k_cache[rows, :, local] = k
            v_cache[rows, :, local] = v
            q = q.reshape(
                shape
            )  # the query heads that share a key/value head act as a query length of `group`
            out, lse = _attention(
                q, k_cache[:live, :, :length], v_cache[:live, :, :length], mask, layer.scaling
            )
            if groups:
                out = self._merge_prefixes(i, q, out, lse, groups, layer.scaling)
            x = self._finish_layer(layer, x, out.reshape(live, -1))
        return self._logits(x)

    def _decode_kernel(self, x, cos, sin, local: torch.Tensor, groups) -> torch.Tensor:
        """:meth:`_decode` with compiled CPU kernels: the attention reads each row's prefix and slot once,
        and the element-wise steps (residual + RMSNorm, rotary embedding + cache write) run as single loops.
        """
        live = x.shape[0]
        offsets = torch.zeros(live, dtype=torch.long)
        prefix_lengths = torch.zeros(live, dtype=torch.long)
        for prefix, members in groups:
            offsets[members] = prefix.offset
            prefix_lengths[members] = len(prefix.ids)
        attention = DecodeAttention(
            local + 1, offsets, prefix_lengths, self.n_kv, self.n_heads // self.n_kv, self.head_dim
        )
        cos, sin = cos[:, 0], sin[:, 0]
        h = torch.empty_like(x)
        delta = None
        for i, layer in enumerate(self.layers):
            add_rms_norm(x, delta, layer.ln_in, layer.eps_in, h)
            qkv = layer.qkv(h)
            q = rope_store(qkv, cos, sin, self.k_cache[i], self.v_cache[i], local, self.n_heads, self.n_kv)
            out = attention(
                q, self.k_cache[i], self.v_cache[i], self.k_arena[i], self.v_arena[i], layer.scaling
            )
            add_rms_norm(x, layer.o(out.view(live, -1)), layer.ln_post, layer.eps_post, h)
            gate, up = layer.gate_up(h).split([layer.intermediate, layer.intermediate], dim=-1)
            delta = layer.down(F.silu(gate).mul_(up))
        x.add_(delta)
        return self._logits(x)

    def _merge_prefixes(self, layer: int, q, out, lse, groups, scaling: float) -> torch.Tensor:
        """Attend the rows of each group to their shared prefix and merge with the slot-local part."""
        live, n_kv, group, dim = q.shape
        prefix_out = torch.zeros_like(out)
        prefix_lse = torch.full_like(lse, float("-inf"))
        for prefix, rows in groups:
            n = rows.shape[0]
            q_rows = q.index_select(0, rows).permute(1, 0, 2, 3).reshape(1, n_kv, n * group, dim)
            o, s = _attention(
                q_rows, prefix.k[layer].unsqueeze(0), prefix.v[layer].unsqueeze(0), None, scaling
            )
            prefix_out.index_copy_(0, rows, o.view(n_kv, n, group, dim).permute(1, 0, 2, 3))
            prefix_lse.index_copy_(0, rows, s.view(n_kv, n, group).permute(1, 0, 2))
        top = torch.maximum(lse, prefix_lse)
        w_local = torch.exp(lse - top).unsqueeze(-1)
        w_prefix = torch.exp(prefix_lse - top).unsqueeze(-1)
        # The weights are float32 (log-sum-exp); the merged output goes on in the model's dtype.
        merged = (out.float() * w_local + prefix_out.float() * w_prefix) / (w_local + w_prefix)
        return merged.to(out.dtype)

    def step_static(self, tokens: torch.Tensor, positions: torch.Tensor, length: int) -> torch.Tensor:
        """One fixed-shape decode step (static mode): ``tokens``/``positions`` of the first ``rows`` slots.

        Every slot holds its whole sequence, so a row writes its new key/value at its position and attends
        the cache up to ``length`` (a bucket at least as long as every row, the rest masked). No host
        synchronisation, no allocation that depends on values: the step can be captured as a CUDA graph.
        """
        rows = tokens.shape[0]
        graphs = self.graphs
        cos, sin = graphs.rope(positions)
        x = F.embedding(tokens, self.embed)
        visible = graphs.key_index[:length].unsqueeze(0) <= positions.unsqueeze(1)
        mask = visible.view(rows, 1, 1, length)
        row_index = graphs.row_index[:rows]
        group = self.n_heads // self.n_kv
        for i, layer in enumerate(self.layers):
            q, k, v = self._qkv(layer, x, cos, sin)
            k_cache, v_cache = graphs.k_cache[i], graphs.v_cache[i]
            k_cache[row_index, :, positions] = k
            v_cache[row_index, :, positions] = v
            # The query heads that share a key/value head act as a query length of `group`.
            out = F.scaled_dot_product_attention(
                q.reshape(rows, self.n_kv, group, self.head_dim),
                k_cache[:rows, :, :length],
                v_cache[:rows, :, :length],
                attn_mask=mask,
                scale=layer.scaling,
            )
            x = self._finish_layer(layer, x, out.reshape(rows, -1))
        return self._logits(x)

    # ------------------------------------------------------------------ sampling
    @staticmethod
    def choose(
        logits: torch.Tensor,
        spec: SamplingParams,
        seen: torch.Tensor | None,
        uniforms: torch.Tensor | None,
        sync_free: bool = False,
    ) -> torch.Tensor:
        """Next token per row, with transformers' processor order: penalty, temperature, top-k, top-p.

        ``seen`` marks the tokens each row already holds (for the repetition penalty); ``uniforms`` holds
        one draw in [0, 1) per row (ignored for greedy decoding). ``sync_free``: never read a value back
        to the host (same tokens; the CPU skips work it can see is not needed instead).
        """
        if seen is not None:
            penalised = torch.where(
                logits < 0, logits * spec.repetition_penalty, logits / spec.repetition_penalty
            )
            logits = torch.where(seen, penalised, logits)
        if spec.temperature == 0:
            return logits.argmax(dim=-1)
        logits = logits / spec.temperature
        if spec.top_k:
            kth = torch.topk(logits, min(spec.top_k, logits.shape[-1]), dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if spec.top_p < 1.0:
            logits = _top_p(logits, spec.top_p, sync_free)
        probs = torch.softmax(logits, dim=-1)
        # Inverse-CDF sampling: one uniform per row from that row's own random stream.
        cdf = probs.cumsum(dim=-1)
        targets = uniforms.to(cdf.device, cdf.dtype).unsqueeze(1) * cdf[:, -1:]
        chosen = torch.searchsorted(cdf, targets, right=True).squeeze(1).clamp_(max=probs.shape[-1] - 1)
        # A draw that rounds onto the very end of the CDF lands on the last token with probability.
        zero = probs.gather(1, chosen.unsqueeze(1)).squeeze(1) == 0
        if sync_free or bool(zero.any()):  # on CUDA the check would cost more than the fix
            last = (probs > 0).cumsum(dim=-1).argmax(dim=-1)
            chosen = torch.where(zero, last, chosen)
        return chosen

    # ------------------------------------------------------------------ the loop
    @torch.inference_mode()
    def run(
        self,
        requests: Sequence[Request],
        spec: SamplingParams,
        on_finish: Callable[[Request], None] | None = None,
    ) -> None:
        """Generate every request's tokens (stored on the request); ``on_finish`` is called per request."""
        if not requests:
            return
        if any(not r.prompt_ids for r in requests):
            raise ValueError("Every prompt needs at least one token")
        longest = max(len(r.prompt_ids) for r in requests)
        if self.max_positions and longest + spec.max_new_tokens > self.max_positions:
            logger.warning(
                "A prompt of %d tokens plus %d new tokens exceeds the model's %d positions",
                longest,
                spec.max_new_tokens,
                self.max_positions,
            )
        schedule = _Schedule(self, requests, spec, on_finish)
        arena_shape = (len(self.layers), max(schedule.arena_tokens, 1), self.n_kv, self.head_dim)
        if self.static:
            if (
                self.graphs is None
                or schedule.local_capacity > self.graphs.capacity
                or self.graphs.requested_slots != self.slots  # batch_size changed: a new cache and graphs
            ):
                self.graphs = None  # the old cache and its graphs go before a larger one is made
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                self.graphs = StepGraphs(
                    self,
                    self.slots,
                    schedule.local_capacity,
                    capture=self.cuda_graphs and self.device.type == "cuda",
                    bucketed=self.bucket_steps,
                )
            slots = min(self.graphs.slots, len(requests))
            self.k_cache, self.v_cache = self.graphs.k_cache, self.graphs.v_cache
            shapes = (("k_arena", arena_shape), ("v_arena", arena_shape))
            buffers = [None, None]
        else:
            slots = min(self.slots, len(requests))
            shape = (len(self.layers), slots, self.n_kv, schedule.local_capacity, self.head_dim)
            shapes = (
                ("k_cache", shape),
                ("v_cache", shape),
                ("k_arena", arena_shape),
                ("v_arena", arena_shape),
            )
            buffers = []
        for name, tensor_shape in shapes:
            tensor, buffer = _zeros(tensor_shape, self.dtype, self.device)
            setattr(self, name, tensor)
            buffers.append(buffer)
        self._slot_buffers = buffers[:2]
        schedule.place_prefixes(self.k_arena, self.v_arena)
        # Denormal floats (tiny probabilities, near-zero activations) are slow on x86; flushing them to
        # zero changes nothing a sampler can see. Restored afterwards (PyTorch's default is off).
        flush = self.device.type == "cpu" and torch.set_flush_denormal(True)
        if self.governor is not None:
            self.governor.start()
        try:
            with _attention_kernels(self.attention_backends):
                schedule.run(slots)
        finally:
            if flush:
                torch.set_flush_denormal(False)
            if self.governor is not None:
                self.governor.stop()
            del self.k_cache, self.v_cache, self.k_arena, self.v_arena, self._slot_buffers
            for buffer in buffers:
                if buffer is not None:
                    buffer.close()

    def move(self, source: int, target: int, length: int) -> None:
        """Copy slot ``source``'s first ``length`` cache positions to slot ``target``."""
        self.k_cache[:, target, :, :length] = self.k_cache[:, source, :, :length]
        self.v_cache[:, target, :, :length] = self.v_cache[:, source, :, :length]

    def clear(self, slot: int) -> None:
        """Hand ``slot``'s cache pages back to the system (they read as zeros again).

        A slot's pages stay committed after its sequence ends; clearing them before a new sequence moves
        in keeps the memory in use near the tokens really held instead of each slot's longest occupant.
        Only for the CPU's lazily committed caches (see :func:`_zeros`); elsewhere nothing happens.
        """
        for tensor, buffer in zip((self.k_cache, self.v_cache), self._slot_buffers, strict=True):
            if buffer is None or not hasattr(buffer, "madvise"):
                continue
            layers, slots = tensor.shape[:2]
            region = tensor[0, 0].numel() * tensor.element_size()  # one layer's part of one slot
            for layer in range(layers):
                start = (layer * slots + slot) * region
                first = -(-start // mmap.PAGESIZE) * mmap.PAGESIZE  # whole pages inside the region only
                last = (start + region) // mmap.PAGESIZE * mmap.PAGESIZE
                if last > first:
                    buffer.madvise(mmap.MADV_DONTNEED, first, last - first)


def _top_p(logits: torch.Tensor, top_p: float, sync_free: bool = False) -> torch.Tensor:
    """transformers' TopPLogitsWarper: drop the least likely tokens whose total mass is <= 1 - top_p.

    A token survives when the mass of the tokens more likely than it is below ``top_p``. The nucleus is
    searched among the most likely candidates first; rows whose candidates hold less than ``top_p`` of
    the mass are sorted in full. ``sync_free`` sorts every row in full (no host read of which rows need
    it; a GPU sorts the whole vocabulary quickly).
    """
    probs = torch.softmax(logits, dim=-1)
    if sync_free:
        sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
        keep = torch.zeros_like(logits, dtype=torch.bool).scatter_(
            1, order, (sorted_probs.cumsum(dim=-1) - sorted_probs) < top_p
        )
        return logits.masked_fill(~keep, float("-inf"))
    k = min(_TOP_P_CANDIDATES, logits.shape[-1])
    top_probs, top_index = torch.topk(probs, k, dim=-1)
    before = top_probs.cumsum(dim=-1) - top_probs  # mass of the more likely candidates
    covered = (top_probs.sum(dim=-1) >= top_p) | (k == logits.shape[-1])
    keep = torch.zeros_like(logits, dtype=torch.bool).scatter_(1, top_index, before < top_p)
    if not bool(covered.all()):
        rows = (~covered).nonzero().squeeze(1)
        sorted_probs, order = torch.sort(probs[rows], dim=-1, descending=True)
        row_keep = (sorted_probs.cumsum(dim=-1) - sorted_probs) < top_p
        keep[rows] = torch.zeros_like(row_keep).scatter_(1, order, row_keep)
    return logits.masked_fill(~keep, float("-inf"))


def _attention(q, k, v, mask, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Attention output and log-sum-exp of the scores (needed to merge attention over split keys).

    ``q``: (batch, heads, queries, dim), ``k``/``v``: (batch, heads, keys, dim), ``mask``: additive, in
    ``q``'s dtype, broadcastable to (batch, heads, queries, keys), or ``None``.
    """
    if q.device.type == "cpu":
        out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(
            q, k, v, 0.0, False, attn_mask=mask, scale=scale
        )
        return out, lse
    scores = torch.matmul(q, k.transpose(-1, -2)).float() * scale
    if mask is not None:
        scores = scores + mask
    lse = torch.logsumexp(scores, dim=-1)
    out = torch.matmul(torch.exp(scores - lse.unsqueeze(-1)).to(v.dtype), v)
    return out, lse


@dataclass(eq=False)
class _Prefix:
    """A prompt prefix shared by several requests; its KV is computed once, freed after its last user."""

    ids: list[int]
    members: int
    offset: int = 0  # first token in the prefix arena
    ready: bool = False
    k: torch.Tensor | None = None  # (layers, kv_heads, len(ids), head_dim) view into the arena
    v: torch.Tensor | None = None


@dataclass(eq=False)
class _Prefill:
    """Tokens to run in one prefill pass and where their keys/values go."""

    tokens: list[int]
    start: int  # absolute position of the first token
    k_target: torch.Tensor  # (layers, kv_heads, >= len(tokens), head_dim)
    v_target: torch.Tensor
    context: _Prefix | None = None
    slot: int | None = None  # static mode: the cache slot the targets are (the whole sequence)


#: A padded prefill pass holds at most this many (query, key) pairs per layer (its mask and the padded
#: attention's work); larger groups of prompts are split.
PADDED_PREFILL_PAIRS = 1 << 26


def _padded_groups(items: Sequence[_Prefill], budget: int | None = None):
    """Consecutive groups of ``items`` whose padded (items x longest queries x longest keys) fits ``budget``
    (default :data:`PADDED_PREFILL_PAIRS`; a single item always forms a group)."""
    budget = PADDED_PREFILL_PAIRS if budget is None else budget
    group: list[_Prefill] = []
    width = keys = 0
    for item in items:
        n = len(item.tokens)
        w, k = max(width, n), max(keys, item.start + n)
        if group and (len(group) + 1) * w * k > budget:
            yield group
            group, w, k = [], n, item.start + n
        group.append(item)
        width, keys = w, k
    if group:
        yield group


def plan_prefixes(prompts: Sequence[Sequence[int]], min_length: int = MIN_SHARED_PREFIX, window: int = 256):
    """Split prompts into runs (in token order) that share a prefix, maximising the tokens saved.

    Returns ``(order, runs)``: ``order`` sorts the prompts by token ids; each run is ``(start, stop,
    prefix_length)`` over ``order``. A prefix is always shorter than each of its prompts (the last prompt
    token must be run to get the first logits). Runs whose prefix is shorter than ``min_length`` get 0.
    """
    order = sorted(range(len(prompts)), key=lambda i: list(prompts[i]))
    n = len(order)
    lcp = [0] * n
    for j in range(1, n):
        a, b = prompts[order[j - 1]], prompts[order[j]]
        lcp[j] = _common_prefix(a, b, limit=min(len(a), len(b)) - 1)
    best = [0] * (n + 1)
    cut = list(range(-1, n))  # cut[j]: where the run ending before j starts (default: a single prompt)
    for j in range(1, n + 1):
        best[j], cut[j] = best[j - 1], j - 1
        shared = None
        for i in range(j - 2, max(-1, j - 1 - window), -1):
            shared = lcp[i + 1] if shared is None else min(shared, lcp[i + 1])
            if shared < min_length:
                break
            saved = best[i] + (j - 1 - i) * shared
            if saved > best[j]:
                best[j], cut[j] = saved, i
    runs = []
    j = n
    while j > 0:
        i = cut[j]
        prefix = min(lcp[i + 1 : j]) if j - i >= 2 else 0
        runs.append((i, j, prefix if prefix >= min_length else 0))
        j = i
    return order, runs[::-1]


class _Schedule:
    """The state of one :meth:`ContinuousBatcher.run`: which request holds which slot, and the queue.

    In static mode every slot holds its whole sequence: a shared prefix is still computed once (in the
    arena), then copied into each member's slot, so a decode step needs no per-prefix work.
    """

    def __init__(self, batcher: ContinuousBatcher, requests, spec: SamplingParams, on_finish) -> None:
        self.b = batcher
        self.inline = batcher.static
        self.prefill_tokens = batcher.prefill_chunk
        self.requests = requests
        self.spec = spec
        self.on_finish = on_finish
        order, runs = plan_prefixes([r.prompt_ids for r in requests])
        self.prefix_of: list[_Prefix | None] = [None] * len(requests)
        for start, stop, length in runs:
            if length:
                prefix = _Prefix(ids=list(requests[order[start]].prompt_ids[:length]), members=stop - start)
                for index in order[start:stop]:
                    self.prefix_of[index] = prefix
        self.local_capacity = spec.max_new_tokens + max(
            len(r.prompt_ids) - (len(p.ids) if p and not self.inline else 0)
            for r, p in zip(requests, self.prefix_of, strict=True)
        )
        self.prefixes = list({id(p): p for p in self.prefix_of if p is not None}.values())
        self.arena_tokens = 0
        for prefix in self.prefixes:
            prefix.offset = self.arena_tokens
            self.arena_tokens += len(prefix.ids)
        self.waiting = list(reversed(order))  # pop() gives the next prompt in token order
        self.occupant: list[int] = []  # request index per live slot (slots 0..live-1)
        self.generators: list[torch.Generator] = []

    def place_prefixes(self, k_arena: torch.Tensor, v_arena: torch.Tensor) -> None:
        """Point every shared prefix at its rows of the arena (layers, arena_tokens, kv_heads, head_dim)."""
        for prefix in self.prefixes:
            span = slice(prefix.offset, prefix.offset + len(prefix.ids))
            prefix.k = k_arena[:, span].transpose(1, 2)
            prefix.v = v_arena[:, span].transpose(1, 2)

    def uniforms(self, generators: Sequence[torch.Generator]) -> torch.Tensor | None:
        if self.spec.temperature == 0:
            return None
        return torch.tensor([torch.rand(1, generator=g).item() for g in generators])

    # ------------------------------------------------------------------ admission
    def admit(self, pairs: list[tuple[int, int]]) -> None:
        """Prefill requests into slots (``(slot, request index)`` pairs) and sample their first tokens."""
        b = self.b
        fresh = []
        for _, index in pairs:
            prefix = self.prefix_of[index]
            if prefix is not None and not prefix.ready:
                prefix.ready = True
                fresh.append(_Prefill(prefix.ids, 0, prefix.k, prefix.v))
                b.reused_prefix_tokens -= len(prefix.ids)  # computed once, counted as reused by every user
        for chunk in self._chunks(fresh):
            b._prefill(chunk)
        items = []
        for slot, index in pairs:
            if slot < len(self.occupant):  # a refill: the previous sequence's pages go first
                b.clear(slot)
            prefix = self.prefix_of[index]
            start = len(prefix.ids) if prefix else 0
            ids = self.requests[index].prompt_ids
            k_slot, v_slot = b.k_cache[:, slot], b.v_cache[:, slot]
            if self.inline:  # the slot holds the whole sequence: the prefix first, then the prompt's own part
                if prefix is not None:
                    k_slot[:, :, :start] = prefix.k
                    v_slot[:, :, :start] = prefix.v
                k_slot, v_slot = k_slot[:, :, start:], v_slot[:, :, start:]
            items.append(_Prefill(ids[start:], start, k_slot, v_slot, prefix, slot if self.inline else None))
            b.reused_prefix_tokens += start
        logits = torch.cat([b._prefill(chunk) for chunk in self._chunks(items)])
        seen = None
        if self.seen is not None:
            for slot, index in pairs:
                self.seen[slot].zero_()
                self.seen[slot, torch.tensor(self.requests[index].prompt_ids, device=b.device)] = True
            seen = self.seen[torch.tensor([slot for slot, _ in pairs], device=b.device)]
        generators = [torch.Generator(device="cpu").manual_seed(self.requests[i].seed) for _, i in pairs]
        tokens = b.choose(logits, self.spec, seen, self.uniforms(generators), b.sync_free).tolist()
        for (slot, index), item, generator, token in zip(pairs, items, generators, tokens, strict=True):
            request = self.requests[index]
            request.tokens = [token]
            request.finished_by_stop = False
            if slot == len(self.occupant):
                self.occupant.append(index)
                self.generators.append(generator)
            else:
                self.occupant[slot], self.generators[slot] = index, generator
            self.positions[slot] = len(request.prompt_ids)
            self.local[slot] = len(request.prompt_ids) if self.inline else len(item.tokens)
            self.next_tokens[slot] = token
            if self.seen is not None:
                self.seen[slot, token] = True

    def _chunks(self, items: list[_Prefill]):
        chunk, size = [], 0
        for item in items:
            if chunk and size + len(item.tokens) > self.prefill_tokens:
                yield chunk
                chunk, size = [], 0
            chunk.append(item)
            size += len(item.tokens)
        if chunk:
            yield chunk

    # ------------------------------------------------------------------ retirement
    def done(self, slot: int) -> bool:
        request = self.requests[self.occupant[slot]]
        if request.tokens[-1] in self.b.eos_ids:
            request.finished_by_stop = True
            return True
        return len(request.tokens) >= self.spec.max_new_tokens

    def release(self, slot: int) -> None:
        index = self.occupant[slot]
        prefix = self.prefix_of[index]
        if prefix is not None:
            prefix.members -= 1  # its arena rows are not reused within this run
        if self.on_finish is not None:
            self.on_finish(self.requests[index])

    def filled(self, slot: int) -> int:
        """Cache positions ``slot`` holds (``local[slot]``, known on the host: no device read)."""
        index = self.occupant[slot]
        request, prefix = self.requests[index], self.prefix_of[index]
        shared = len(prefix.ids) if prefix is not None and not self.inline else 0
        return len(request.prompt_ids) - shared + len(request.tokens) - 1

    def remove(self, slot: int) -> None:
        """Free ``slot`` by moving the last live slot into it."""
        last = len(self.occupant) - 1
        if slot != last:
            self.b.clear(slot)  # the finished sequence's pages beyond what moves in are handed back too
            self.b.move(last, slot, self.filled(last))
            for tensor in (self.positions, self.local, self.next_tokens):
                tensor[slot] = tensor[last]
            if self.seen is not None:
                self.seen[slot] = self.seen[last]
            self.occupant[slot], self.generators[slot] = self.occupant[last], self.generators[last]
        self.b.clear(last)
        self.occupant.pop()
        self.generators.pop()

    def turn_over(self) -> None:
        """Retire finished sequences: refill their slots from the queue, or compact the live block."""
        while True:
            finished = [slot for slot in range(len(self.occupant)) if self.done(slot)]
            if not finished:
                return
            for slot in finished:
                self.release(slot)
            refill = finished[: len(self.waiting)]
            for slot in sorted(finished[len(refill) :], reverse=True):
                self.remove(slot)
            if refill:
                self.admit([(slot, self.waiting.pop()) for slot in refill])

    # ------------------------------------------------------------------ the loop
    def run(self, slots: int) -> None:
        b = self.b
        device = b.device
        self.positions = torch.zeros(slots, dtype=torch.long, device=device)
        self.local = torch.zeros(slots, dtype=torch.long, device=device)
        self.next_tokens = torch.zeros(slots, dtype=torch.long, device=device)
        self.seen = None
        if self.spec.repetition_penalty != 1.0:
            self.seen = torch.zeros(slots, b.vocab_size, dtype=torch.bool, device=device)
        first = min(slots, len(self.waiting))
        self.admit([(slot, self.waiting.pop()) for slot in range(first)])
        while True:
            if b.governor is not None:
                b.governor.update()
            self.turn_over()
            live = len(self.occupant)
            if not live:
                return
            if self.inline:
                length = max(
                    len(self.requests[i].prompt_ids) + len(self.requests[i].tokens) for i in self.occupant
                )
                logits = b.graphs.step(self.next_tokens, self.positions, live, length)
            else:
                rows_by_prefix: dict[int, tuple[_Prefix, list[int]]] = {}
                for slot, index in enumerate(self.occupant):
                    prefix = self.prefix_of[index]
                    if prefix is not None:
                        rows_by_prefix.setdefault(id(prefix), (prefix, []))[1].append(slot)
                groups = [(p, torch.tensor(rows, device=device)) for p, rows in rows_by_prefix.values()]
                logits = b._decode(self.next_tokens[:live], self.positions[:live], self.local[:live], groups)
            seen = self.seen[:live] if self.seen is not None else None
            chosen = b.choose(logits, self.spec, seen, self.uniforms(self.generators), b.sync_free)
            self.positions[:live] += 1
            self.local[:live] += 1
            self.next_tokens[:live] = chosen
            if self.seen is not None:
                self.seen[torch.arange(live, device=device), chosen] = True
            for slot, token in enumerate(chosen.tolist()):
                self.requests[self.occupant[slot]].tokens.append(token)


def _common_prefix(a: Sequence[int], b: Sequence[int], limit: int) -> int:
    n = min(len(a), len(b), limit)
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


__all__ = [
    "SUPPORTED_MODEL_TYPES",
    "ContinuousBatcher",
    "Request",
    "plan_prefixes",
    "unsupported_reason",
]
