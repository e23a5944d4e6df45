"""The next token of every row, with transformers' semantics and one random stream per prompt.

The processors run in transformers' order (repetition penalty, temperature, top-k, top-p) and a token is
drawn by inverse-CDF sampling from one uniform per row, taken from that prompt's own generator: a
prompt's text does not depend on which other prompts share its batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..engine_config import SamplingParams

#: top-p looks for the nucleus among this many most likely tokens first (a full sort is slow on the CPU).
TOP_P_CANDIDATES = 512


def uniforms(sampling: SamplingParams, generators: Sequence[torch.Generator]) -> torch.Tensor | None:
    """One draw in [0, 1) per row from each row's generator (``None`` for greedy decoding: no draw)."""
    if sampling.temperature == 0:
        return None
    return torch.tensor([torch.rand(1, generator=g).item() for g in generators])


def choose(
    logits: torch.Tensor,
    sampling: SamplingParams,
    seen: torch.Tensor | None,
    draws: torch.Tensor | None,
    sync_free: bool = False,
) -> torch.Tensor:
    """Next token per row, with transformers' processor order: penalty, temperature, top-k, top-p.

    ``seen`` marks the tokens each row already holds (for the repetition penalty); ``draws`` holds one
    uniform in [0, 1) per row (:func:`uniforms`; ignored for greedy decoding). ``sync_free``: never read a
    value back to the host (same tokens; the CPU skips work it can see is not needed instead).
    """
    if seen is not None:
        penalised = torch.where(
            logits < 0, logits * sampling.repetition_penalty, logits / sampling.repetition_penalty
        )
        logits = torch.where(seen, penalised, logits)
    if sampling.temperature == 0:
        return logits.argmax(dim=-1)
    logits = logits / sampling.temperature
    if sampling.top_k:
        kth = torch.topk(logits, min(sampling.top_k, logits.shape[-1]), dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if sampling.top_p < 1.0:
        logits = top_p(logits, sampling.top_p, sync_free)
    probs = torch.softmax(logits, dim=-1)
    # Inverse-CDF sampling: one uniform per row from that row's own random stream.
    cdf = probs.cumsum(dim=-1)
    targets = draws.to(cdf.device, cdf.dtype).unsqueeze(1) * cdf[:, -1:]
    chosen = torch.searchsorted(cdf, targets, right=True).squeeze(1).clamp_(max=probs.shape[-1] - 1)
    # A draw that rounds onto the very end of the CDF lands on the last token with probability.
    zero = probs.gather(1, chosen.unsqueeze(1)).squeeze(1) == 0
    if sync_free or bool(zero.any()):  # on CUDA the check would cost more than the fix
        last = (probs > 0).cumsum(dim=-1).argmax(dim=-1)
        chosen = torch.where(zero, last, chosen)
    return chosen


def top_p(logits: torch.Tensor, mass: float, sync_free: bool = False) -> torch.Tensor:
    """transformers' TopPLogitsWarper: drop the least likely tokens whose total mass is <= 1 - ``mass``.

    A token survives when the mass of the tokens more likely than it is below ``mass``. The nucleus is
    searched among the :data:`TOP_P_CANDIDATES` most likely tokens first; rows whose candidates hold less
    than ``mass`` are sorted in full. ``sync_free`` sorts every row in full (no host read of which rows
    need it; a GPU sorts the whole vocabulary quickly).
    """
    probs = torch.softmax(logits, dim=-1)
    if sync_free:
        sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
        keep = torch.zeros_like(logits, dtype=torch.bool).scatter_(
            1, order, (sorted_probs.cumsum(dim=-1) - sorted_probs) < mass
        )
        return logits.masked_fill(~keep, float("-inf"))
    k = min(TOP_P_CANDIDATES, logits.shape[-1])
    top_probs, top_index = torch.topk(probs, k, dim=-1)
    before = top_probs.cumsum(dim=-1) - top_probs  # mass of the more likely candidates
    covered = (top_probs.sum(dim=-1) >= mass) | (k == logits.shape[-1])
    keep = torch.zeros_like(logits, dtype=torch.bool).scatter_(1, top_index, before < mass)
    if not bool(covered.all()):
        rows = (~covered).nonzero().squeeze(1)
        sorted_probs, order = torch.sort(probs[rows], dim=-1, descending=True)
        row_keep = (sorted_probs.cumsum(dim=-1) - sorted_probs) < mass
        keep[rows] = torch.zeros_like(row_keep).scatter_(1, order, row_keep)
    return logits.masked_fill(~keep, float("-inf"))
