"""The closed loop: generate -> fine-tune a student -> evaluate on held-out tasks -> regenerate where the
student is weak."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "evaluation": ["choose_focus", "eval_rows", "score_answers"],
        "refine": ["Refine", "RefineResult"],
        "refine_config": ["RefineConfig"],
    },
)

if TYPE_CHECKING:  # pragma: no cover
    from .evaluation import choose_focus, eval_rows, score_answers
    from .refine import Refine, RefineResult
    from .refine_config import RefineConfig
