"""Backend ``transformers``: ``model.generate`` on fixed, length-sorted batches.

Works for every causal LM transformers can load, on every device and dtype. Prompts are sorted by token
length (longest first) and generated ``batch_size`` at a time with left padding, so each batch wastes
little padding and a batch that does not fit in memory shows up first. If a batch runs out of memory, the
batch size is halved (for this and later calls; logged) and generation goes on; only a single prompt that
does not fit raises.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import torch

from .engine_config import SamplingParams
from .runner import Request, derive_seed, is_out_of_memory, truncate_at_stop

logger = logging.getLogger(__name__)


class FixedBatchRunner:
    """``model.generate`` over batches of ``batch_size`` prompts (see the module docstring)."""

    name = "transformers"

    def __init__(self, model, pad_token_id: int, eos_ids: Sequence[int], batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = model
        self.pad_token_id = pad_token_id
        self.eos_ids = frozenset(int(t) for t in eos_ids)
        self.batch_size = batch_size

    def run(
        self,
        requests: Sequence[Request],
        sampling: SamplingParams,
        on_finish: Callable[[Request], None] | None = None,
    ) -> None:
        order = sorted(range(len(requests)), key=lambda i: -len(requests[i].prompt_ids))
        start = 0
        while start < len(order):
            batch = [requests[i] for i in order[start : start + self.batch_size]]
            try:
                self.generate_batch(batch, sampling)
            except Exception as err:
                if not is_out_of_memory(err) or len(batch) == 1:
                    raise
                self.batch_size = max(1, len(batch) // 2)
                logger.warning(
                    "Out of memory generating %d prompts at once; continuing with batch size %d",
                    len(batch),
                    self.batch_size,
                )
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                continue
            if on_finish is not None:
                for request in batch:
                    on_finish(request)
            start += len(batch)

    @torch.inference_mode()
    def generate_batch(self, batch: Sequence[Request], sampling: SamplingParams) -> None:
        """One left-padded ``model.generate`` call; the batch's seed derives from its members' seeds."""
        device = next(self.model.parameters()).device
        width = max(len(r.prompt_ids) for r in batch)
        ids = torch.full((len(batch), width), self.pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, request in enumerate(batch):
            n = len(request.prompt_ids)
            ids[row, width - n :] = torch.tensor(request.prompt_ids)
            mask[row, width - n :] = 1
        kwargs: dict[str, Any] = {
            "max_new_tokens": sampling.max_new_tokens,
            "do_sample": sampling.temperature > 0,
            "pad_token_id": self.pad_token_id,
            "eos_token_id": sorted(self.eos_ids),
            "repetition_penalty": sampling.repetition_penalty,
        }
        if sampling.temperature > 0:
            kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        torch.manual_seed(derive_seed(0, [str(r.seed) for r in batch]))
        out = self.model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), **kwargs)
        for request, tokens in zip(batch, out[:, width:].tolist(), strict=True):
            request.tokens, request.finished_by_stop = truncate_at_stop(tokens, self.eos_ids)
