"""Backend ``transformers-paged``: transformers' own continuous batching (``model.generate_batch``).

transformers schedules the requests itself over a paged KV cache (with CUDA graphs and flash attention
where it has them). Works for any model transformers' continuous batching supports, on any device.
Sampling is seeded once per call (from the base seed and the prompts): the same call gives the same
texts, but a prompt's text depends on the other prompts of its call. Sampling settings it cannot apply
as ``generate`` does (a repetition penalty) are an error, never dropped or changed silently.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import torch

from .engine_config import SamplingParams
from .runner import Request, derive_seed, truncate_at_stop

logger = logging.getLogger(__name__)


def paged_generation_available(model) -> bool:
    """Whether this transformers version has ``generate_batch`` for ``model``."""
    return callable(getattr(model, "generate_batch", None))


class PagedRunner:
    """``model.generate_batch`` over all requests of a call (see the module docstring)."""

    name = "transformers-paged"

    def __init__(
        self, model, pad_token_id: int, eos_ids: Sequence[int], batch_size: int | None = None
    ) -> None:
        if not paged_generation_available(model):
            raise ValueError(
                "backend='transformers-paged' needs transformers' generate_batch (transformers >= 4.56); "
                "upgrade transformers or use backend='transformers'"
            )
        self.model = model
        self.pad_token_id = pad_token_id
        self.eos_ids = frozenset(int(t) for t in eos_ids)
        self.batch_size = batch_size

    @torch.inference_mode()
    def run(
        self,
        requests: Sequence[Request],
        sampling: SamplingParams,
        on_finish: Callable[[Request], None] | None = None,
    ) -> None:
        from transformers import GenerationConfig

        if sampling.repetition_penalty != 1.0:
            raise ValueError(
                "backend='transformers-paged' cannot apply repetition_penalty as generate does (transformers' "
                "continuous batching penalises generated tokens only, not the prompt); use backend "
                "'continuous' or 'transformers', or repetition_penalty=1.0"
            )
        if not requests:
            return
        sample = sampling.temperature > 0
        config = GenerationConfig(
            max_new_tokens=sampling.max_new_tokens,
            do_sample=sample,
            temperature=sampling.temperature if sample else None,
            top_p=sampling.top_p if sample else None,
            top_k=sampling.top_k if sample else None,
            repetition_penalty=sampling.repetition_penalty,
            eos_token_id=sorted(self.eos_ids),
            pad_token_id=self.pad_token_id,
        )
        seed = derive_seed(0, [str(r.seed) for r in requests])
        torch.manual_seed(seed)
        kwargs = {}
        try:  # transformers >= 5.18 takes its scheduler settings separately
            from transformers.generation import ContinuousBatchingConfig

            kwargs["continuous_batching_config"] = ContinuousBatchingConfig(
                seed=seed, drop_unsupported_processors=False, max_requests_per_batch=self.batch_size
            )
        except ImportError:
            pass
        results = self.model.generate_batch(
            [list(r.prompt_ids) for r in requests], generation_config=config, progress_bar=False, **kwargs
        )
        outputs = list(results.values())
        failed = [o for o in outputs if getattr(o, "error", None)]
        if len(outputs) != len(requests) or failed:
            detail = failed[0].error if failed else f"{len(outputs)} of {len(requests)} results came back"
            raise RuntimeError(f"transformers' generate_batch failed: {detail}; try backend='transformers'")
        # generate_batch returns results in the order of its inputs.
        for request, output in zip(requests, outputs, strict=True):
            tokens = list(output.generated_tokens)[: sampling.max_new_tokens]
            request.tokens, request.finished_by_stop = truncate_at_stop(tokens, self.eos_ids)
            if on_finish is not None:
                on_finish(request)
