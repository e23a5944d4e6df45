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
* on the CPU, compiled kernels for decode attention (:mod:`..cpu.decode_attention`) and for the element-wise
  steps of a layer (:mod:`..cpu.fused`);
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
texts). Architectures other than the ones in :data:`~hf_synth.engine.support.SUPPORTED_MODEL_TYPES` use
another backend.

Its rooms: :mod:`.batcher` (:class:`ContinuousBatcher`: set-up and one call's run), :mod:`.packing` (the
weights' layout), :mod:`.model_step` (the forward passes: one decoder-layer loop for prefill, decode and
the static step), :mod:`.scheduler` (slots, admission, prefix sharing, retirement), :mod:`.sampler` (the
next token), :mod:`.kv_cache` (the cache of a run) and :mod:`.cuda_graphs` (static mode's cache, tables
and captured steps). The CPU runtime they use is :mod:`hf_synth.engine.cpu`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "batcher": ["ContinuousBatcher", "Request", "unsupported_reason"],
        "scheduler": ["plan_prefixes"],
    },
)


if TYPE_CHECKING:  # pragma: no cover
    from .batcher import ContinuousBatcher, Request, unsupported_reason
    from .scheduler import plan_prefixes
