"""What a token-level backend runs: requests of prompt token ids in, completion token ids out.

:class:`~hf_synth.engine.GenerationEngine` renders and tokenizes prompts, keeps the statistics and the
progress bar, and hands the token work to a :class:`TokenRunner` chosen by backend name
(:mod:`hf_synth.engine.selection`): hf-synth's continuous batcher, ``model.generate`` on fixed batches,
or transformers' own continuous batching (``generate_batch``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch

from .engine_config import SamplingParams


@dataclass
class Request:
    """One prompt to complete: its token ids and random seed; ``tokens`` holds the completion afterwards."""

    prompt_ids: list[int]
    seed: int
    tokens: list[int] = field(default_factory=list)
    finished_by_stop: bool = False
    index: int = 0  # position in the caller's list of prompts


class TokenRunner(Protocol):
    """A backend's token loop. ``run`` fills each request's ``tokens``/``finished_by_stop`` in place and
    calls ``on_finish`` once per request as it completes (in any order)."""

    def run(
        self,
        requests: Sequence[Request],
        sampling: SamplingParams,
        on_finish: Callable[[Request], None] | None = None,
    ) -> None: ...


def derive_seed(seed: int, texts: Sequence[str]) -> int:
    """A 31-bit seed from a base seed and texts: the same prompt with the same seed samples the same way."""
    digest = hashlib.sha256(str(seed).encode())
    for text in texts:
        digest.update(b"\x00" + text.encode("utf-8", "surrogatepass"))
    return int.from_bytes(digest.digest()[:4], "little") & 0x7FFFFFFF


def is_out_of_memory(err: Exception) -> bool:
    """CUDA/MPS/CPU allocation failures, whichever exception type the backend raises."""
    if isinstance(err, (torch.OutOfMemoryError, MemoryError)):
        return True
    return isinstance(err, RuntimeError) and "out of memory" in str(err).lower()


def truncate_at_stop(tokens: list[int], eos_ids: frozenset[int]) -> tuple[list[int], bool]:
    """``tokens`` up to and including the first end-of-sequence token, and whether there was one."""
    stop = next((j for j, t in enumerate(tokens) if t in eos_ids), None)
    return (tokens, False) if stop is None else (tokens[: stop + 1], True)
