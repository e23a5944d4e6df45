"""More diversity: paraphrases, blends of several sources, and marked negative examples (preference pairs)."""

from .augment_config import NEGATIVE_KINDS, NegativeConfig, ParaphraseConfig
from .blend import BLEND_COLUMNS, blend
from .negatives import preference_pairs
from .paraphrase import clean_paraphrase, paraphrase

__all__ = [
    "BLEND_COLUMNS",
    "NEGATIVE_KINDS",
    "NegativeConfig",
    "ParaphraseConfig",
    "blend",
    "clean_paraphrase",
    "paraphrase",
    "preference_pairs",
]
