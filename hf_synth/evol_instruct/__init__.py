"""Evol-Instruct: evolve instructions in depth and breadth, eliminate failures, answer, iterate."""

from .evol_instruct_config import IN_DEPTH, OPERATIONS, EvolInstructConfig
from .parsing import (
    JUDGE_QUESTIONS,
    JudgeVerdict,
    ParsedEvolution,
    combine_verdict,
    parse_evolved_instruction,
    parse_score,
    parse_yes_no_answer,
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

__all__ = [
    "EVOL_COLUMNS",
    "IN_DEPTH",
    "JUDGE_QUESTIONS",
    "OPERATIONS",
    "EvolInstruct",
    "EvolInstructConfig",
    "EvolInstructResult",
    "EvolInstructSummary",
    "JudgeVerdict",
    "ParsedEvolution",
    "build_evolution_requests",
    "calibrate_judge",
    "check_evolutions",
    "choose_operation",
    "combine_verdict",
    "evolve_instructions",
    "generate_responses",
    "judge_evolutions",
    "parse_evolved_instruction",
    "parse_score",
    "parse_yes_no_answer",
    "prepare_roots",
]
