"""Human review in the browser: a local page to accept, reject or correct rows, an append-only decisions
file that loses nothing, and the reviewed dataset with its review figures."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "apply": ["ReviewedRun", "apply_review", "review_figures", "save_reviewed"],
        "decisions": ["Decision", "DecisionConflict", "DecisionLog", "REJECT_REASONS"],
        "review_config": ["ReviewConfig"],
        "review_set": ["ReviewItem", "ReviewSet"],
        "server": ["ReviewApp", "ReviewServer", "serve_review"],
    },
)

if TYPE_CHECKING:  # pragma: no cover
    from .apply import ReviewedRun, apply_review, review_figures, save_reviewed
    from .decisions import REJECT_REASONS, Decision, DecisionConflict, DecisionLog
    from .review_config import ReviewConfig
    from .review_set import ReviewItem, ReviewSet
    from .server import ReviewApp, ReviewServer, serve_review
