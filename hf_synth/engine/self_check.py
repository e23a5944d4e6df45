"""A quick check of the ``continuous`` backend against ``model.generate`` before it is trusted.

On a GPU ``auto`` picks hf-synth's continuous batcher (fixed-shape steps replayed as CUDA graphs), a path
that depends on the GPU, its driver and the torch build. Before :class:`~hf_synth.engine.GenerationEngine`
trusts it, :func:`check_continuous` runs a few prompts for a few greedy tokens through the batcher the
engine will use and through ``model.generate`` (one prompt at a time, same weights, same dtype) and
compares the tokens.

The tolerance: greedy texts of two correct implementations may part where the model nearly ties (bf16
rounds logits of size ~20 to steps of 0.125, and the two paths sum in different orders). So the check
walks each prompt's tokens; at the first position where the batcher's token differs from ``generate``'s,
it looks at ``generate``'s own logits there: if the batcher's token scores within :func:`tolerance` of the
best token, the divergence is a near-tie and the prompt passes (its later tokens are not compared, the
sequences have parted); otherwise the batcher chose a token the model does not rate near the top, which is
a broken fast path. A crash, a wrong number of tokens, or an exception is a failure too. A fast path that
computes garbage (wrong kernels, bad graph replays, NaNs) picks tokens far from the top, so it cannot pass.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import torch

from .engine_config import SamplingParams
from .runner import Request

logger = logging.getLogger(__name__)

#: Prompts the check runs (rendered with the model's chat template when it has one); different lengths,
#: so the batch has rows of different lengths as real work does.
CHECK_PROMPTS = (
    "Write a short poem about the sea.",
    "Give three tips for staying healthy, one per line.",
    "Classify the sentiment of this review as positive or negative. Input: The food was cold and the "
    "service slow, but the view made up for it.",
)
#: Greedy tokens generated per prompt.
CHECK_TOKENS = 8


def tolerance(dtype: torch.dtype) -> float:
    """How far (in logits) below ``generate``'s best token the batcher's token may score at a divergence.

    float32 paths agree to ~1e-4; half precision rounds each of dozens of layers' outputs to 8 (bf16) or
    11 (fp16) mantissa bits, which moves logits of a 135M-parameter model by up to a few tenths.
    """
    if dtype == torch.float32:
        return 1e-2
    if dtype == torch.float16:
        return 0.5
    return 1.0  # bfloat16 and anything coarser


@dataclass(frozen=True)
class CheckResult:
    """The outcome of :func:`check_continuous`: ``ok``, and a one-line account of it."""

    ok: bool
    detail: str
    seconds: float

    def __str__(self) -> str:
        return f"self-check {'passed' if self.ok else 'FAILED'} ({self.detail}; {self.seconds:.2f} s)"


def _reference(model, ids: list[int], max_new_tokens: int, eos_ids: frozenset[int]):
    """``model.generate``'s greedy tokens for one prompt and its logits at each step."""
    device = next(model.parameters()).device
    out = model.generate(
        input_ids=torch.tensor([ids], device=device),
        attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=device),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        temperature=None,
        top_p=None,
        top_k=None,
        eos_token_id=sorted(eos_ids),
        pad_token_id=sorted(eos_ids)[0],
        output_logits=True,
        return_dict_in_generate=True,
    )
    tokens = out.sequences[0, len(ids) :].tolist()
    logits = [step[0].float().cpu() for step in out.logits]
    return tokens, logits


def compare(tokens: list[int], reference: list[int], logits: list[torch.Tensor], tol: float) -> str | None:
    """Why ``tokens`` (the batcher's) do not pass against ``reference`` (``generate``'s, with its logits
    per step), or ``None`` when they do (see the module docstring)."""
    for step, (mine, theirs) in enumerate(zip(tokens, reference, strict=False)):
        if mine == theirs:
            continue
        scores = logits[step]
        if not torch.isfinite(scores[mine]):
            return f"token {step} is {mine}, which generate scores {scores[mine].item()}"
        gap = (scores.max() - scores[mine]).item()
        if gap > tol:
            return f"token {step} is {mine}, {gap:.3g} logits below generate's {theirs} (tolerance {tol:g})"
        return None  # a near-tie: the sequences part here
    if len(tokens) != len(reference):
        return f"{len(tokens)} tokens where generate gave {len(reference)}"
    return None


@torch.inference_mode()
def check_continuous(runner, model, prompt_ids: list[list[int]], eos_ids, tokens: int = CHECK_TOKENS):
    """Run ``prompt_ids`` through ``runner`` (a :class:`~hf_synth.engine.continuous.ContinuousBatcher`)
    and ``model.generate`` greedily for ``tokens`` tokens; a :class:`CheckResult`. Exceptions of the
    batcher are a failed check, not raised."""
    started = time.perf_counter()
    eos = frozenset(int(t) for t in eos_ids)
    dtype = next(model.parameters()).dtype
    tol = tolerance(dtype)
    requests = [Request(list(ids), seed=0, index=i) for i, ids in enumerate(prompt_ids)]
    try:
        runner.run(requests, SamplingParams(max_new_tokens=tokens, temperature=0.0))
    except Exception as err:  # whatever breaks on this GPU/torch: the engine falls back
        logger.debug("The continuous batcher failed its self-check", exc_info=True)
        return CheckResult(False, f"{type(err).__name__}: {err}", time.perf_counter() - started)
    for request in requests:
        reference, logits = _reference(model, request.prompt_ids, tokens, eos)
        problem = compare(request.tokens, reference, logits, tol)
        if problem:
            detail = f"prompt {request.index + 1} of {len(requests)}: {problem}"
            return CheckResult(False, detail, time.perf_counter() - started)
    detail = f"{len(requests)} prompts x {tokens} greedy tokens agree with generate in {str(dtype)[6:]}"
    return CheckResult(True, detail, time.perf_counter() - started)
