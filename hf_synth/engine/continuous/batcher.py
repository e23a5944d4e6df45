"""The continuous batcher: a fixed number of KV-cache slots refilled as sequences end.

:class:`ContinuousBatcher` owns the model's packed weights (:mod:`.packing`) and its forward passes (it
is a :class:`~.model_step.ModelStep`), decides how it runs on this device (static mode, the compiled CPU
kernels, SDPA's kernels, the thread governor) and runs each call: the cache is made for the call
(:mod:`.kv_cache`; in static mode the one :class:`~.cuda_graphs.StepGraphs` keeps), and the schedule
(:mod:`.scheduler`) admits, decodes, samples (:mod:`.sampler`) and retires the requests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch

from ..cpu.decode_attention import available as compiled_kernels_available
from ..cpu.decode_attention import check_kernels
from ..cpu.memory import keep_large_allocations
from ..cpu.threads import ThreadGovernor
from ..engine_config import SamplingParams
from ..runner import Request
from ..support import STATIC_ROPE_TYPES, config_problem
from .cuda_graphs import StepGraphs
from .kv_cache import KVCache
from .model_step import ModelStep, attention_kernels, cuda_attention_backends, fused_rms_norm, rms_norm
from .packing import PackedWeights
from .scheduler import Schedule

logger = logging.getLogger(__name__)


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


class ContinuousBatcher(ModelStep):
    """Decode many prompts with a fixed number of KV-cache slots that are refilled as sequences end.

    Args:
        model: A loaded causal LM whose type is in :data:`~hf_synth.engine.support.SUPPORTED_MODEL_TYPES`
            (checked; see :func:`unsupported_reason`). Its q/k/v and gate/up weights become views of fused
            tensors. On the CPU each projection runs with the method measured fastest for its shape on
            this machine (:mod:`..cpu.tuning`; ``methods`` records the choice).
        slots: How many sequences decode together (the batch size).
        eos_ids: Token ids that end a sequence.
        static: Every slot holds its whole sequence and a decode step attends it with one softmax (see
            :mod:`hf_synth.engine.continuous`). ``None``: on CUDA, where the steps are captured as CUDA
            graphs, and for half-precision models on the CPU (the compiled CPU kernels are float32-only;
            one softmax over the whole sequence is what ``model.generate`` computes).

    Attributes:
        cuda_graphs: Capture static steps as CUDA graphs (on CUDA devices; set ``False`` to run eagerly).
        bucket_steps: Run static steps at bucketed shapes even when not capturing (the test suite uses it
            to check on the CPU what graphs replay on a GPU).
        governor: On the CPU, the :class:`~..cpu.threads.ThreadGovernor` that gives threads up while other
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
        weights = PackedWeights(model, slots, self.n_heads, self.n_kv, self.head_dim)
        self.vocab_size = weights.vocab_size
        self.use_onednn = weights.use_onednn
        self.methods = weights.methods
        self.packed_weights = weights.packed
        self.lm_head = weights.lm_head
        self.layers = weights.layers
        self.use_kernel = compiled_kernels_available(model.get_output_embeddings().weight) and not static
        if self.use_kernel:
            problem = check_kernels(self.n_kv, self.n_heads // self.n_kv, self.head_dim)
            if problem:
                logger.warning("Compiled CPU kernels unavailable (%s); using PyTorch attention", problem)
                self.use_kernel = False
        if self.device.type == "cpu":
            keep_large_allocations()
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
        self._norm = fused_rms_norm if on_cuda and hasattr(torch.nn.functional, "rms_norm") else rms_norm
        #: Static mode: run all the prompts of a prefill pass through one attention call per layer
        #: (padded to the longest, masked) instead of one per prompt. On by default on CUDA.
        self.batched_prefill = on_cuda
        #: Skip the host synchronisations sampling needs only to save work on the CPU (on CUDA the work
        #: is cheaper than waiting for the GPU).
        self.sync_free = on_cuda
        #: The attention kernels SDPA may use on CUDA, in order; cuDNN's is left out: it builds a plan per
        #: new shape (every prompt length of a prefill, every step of an eager decode).
        self.attention_backends = cuda_attention_backends() if on_cuda else None
        # On the CPU, fewer threads while other processes keep cores busy (see ..cpu.threads).
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

    @property
    def batch_size(self) -> int:
        """The number of slots (the name every backend's runner shares)."""
        return self.slots

    @batch_size.setter
    def batch_size(self, value: int) -> None:
        self.slots = value

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
        schedule = Schedule(self, requests, spec, on_finish)
        slot_cache = None
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
            slot_cache = (self.graphs.k_cache, self.graphs.v_cache)
        else:
            slots = min(self.slots, len(requests))
        cache = KVCache(
            len(self.layers),
            slots,
            self.n_kv,
            schedule.local_capacity,
            self.head_dim,
            schedule.arena_tokens,
            self.dtype,
            self.device,
            slot_cache,
        )
        schedule.place_prefixes(cache.k_arena, cache.v_arena)
        # Denormal floats (tiny probabilities, near-zero activations) are slow on x86; flushing them to
        # zero changes nothing a sampler can see. Restored afterwards (PyTorch's default is off).
        flush = self.device.type == "cpu" and torch.set_flush_denormal(True)
        if self.governor is not None:
            self.governor.start()
        try:
            with attention_kernels(self.attention_backends):
                schedule.run(slots, cache)
        finally:
            if flush:
                torch.set_flush_denormal(False)
            if self.governor is not None:
                self.governor.stop()
            cache.close()
