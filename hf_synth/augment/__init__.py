"""More diversity: paraphrases, blends of several sources, and marked negative examples (preference pairs)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "augment_config": ["NEGATIVE_KINDS", "NegativeConfig", "ParaphraseConfig"],
        "backtranslate": ["back_translate"],
        "blending": ["BLEND_COLUMNS", "blend"],
        "negatives": ["preference_pairs"],
        "paraphrasing": ["clean_paraphrase", "paraphrase"],
        "slots": ["fill_slots", "fill_template", "propose_slot_values", "template_slots"],
    },
)

if TYPE_CHECKING:  # pragma: no cover
    from .augment_config import NEGATIVE_KINDS, NegativeConfig, ParaphraseConfig
    from .backtranslate import back_translate
    from .blending import BLEND_COLUMNS, blend
    from .negatives import preference_pairs
    from .paraphrasing import clean_paraphrase, paraphrase
    from .slots import fill_slots, fill_template, propose_slot_values, template_slots
