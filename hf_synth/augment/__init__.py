"""More diversity: paraphrases, blends of several sources, and marked negative examples (preference pairs)."""

from .augment_config import NEGATIVE_KINDS, NegativeConfig, ParaphraseConfig
from .backtranslate import back_translate
from .blend import BLEND_COLUMNS, blend
from .negatives import preference_pairs
from .paraphrase import clean_paraphrase, paraphrase
from .slots import fill_template, propose_slot_values, template_slots

__all__ = [
    "BLEND_COLUMNS",
    "NEGATIVE_KINDS",
    "NegativeConfig",
    "ParaphraseConfig",
    "back_translate",
    "blend",
    "fill_template",
    "propose_slot_values",
    "template_slots",
    "clean_paraphrase",
    "paraphrase",
    "preference_pairs",
]
