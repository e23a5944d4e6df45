"""Curation beyond single-row filters: skill/topic coverage of a dataset."""

from .coverage import DEFAULT_TAXONOMY, classify_skills, coverage_report, load_taxonomy

__all__ = ["DEFAULT_TAXONOMY", "classify_skills", "coverage_report", "load_taxonomy"]
