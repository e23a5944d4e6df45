"""Evol-Instruct: evolve instructions in depth and breadth, eliminate failures, answer, iterate."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "evol_instruct_config": ["IN_DEPTH", "OPERATIONS", "EvolInstructConfig"],
        "parsing": [
            "JUDGE_QUESTIONS",
            "JudgeVerdict",
            "ParsedEvolution",
            "combine_verdict",
            "parse_evolved_instruction",
            "parse_score",
        ],
        "pipeline": ["EVOL_COLUMNS", "EvolInstruct", "EvolInstructResult", "EvolInstructSummary"],
        "steps": [
            "build_evolution_requests",
            "calibrate_judge",
            "check_evolutions",
            "choose_operation",
            "evolve_instructions",
            "generate_responses",
            "judge_evolutions",
            "prepare_roots",
        ],
    },
)

if TYPE_CHECKING:  # pragma: no cover
    from .evol_instruct_config import IN_DEPTH, OPERATIONS, EvolInstructConfig
    from .parsing import (
        JUDGE_QUESTIONS,
        JudgeVerdict,
        ParsedEvolution,
        combine_verdict,
        parse_evolved_instruction,
        parse_score,
    )
    from .pipeline import EVOL_COLUMNS, EvolInstruct, EvolInstructResult, EvolInstructSummary
    from .steps import (
        build_evolution_requests,
        calibrate_judge,
        check_evolutions,
        choose_operation,
        evolve_instructions,
        generate_responses,
        judge_evolutions,
        prepare_roots,
    )
