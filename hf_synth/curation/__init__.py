"""Curation beyond single-row filters: skill/topic coverage of a dataset."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "coverage": [
            "DEFAULT_TAXONOMY",
            "classify_skills",
            "coverage_report",
            "load_taxonomy",
            "skill_labeller",
        ],
        "skill_classifier": ["SkillClassifier", "default_skill_classifier", "load_labelled"],
    },
)

if TYPE_CHECKING:  # pragma: no cover
    from .coverage import DEFAULT_TAXONOMY, classify_skills, coverage_report, load_taxonomy, skill_labeller
    from .skill_classifier import SkillClassifier, default_skill_classifier, load_labelled
