"""Self-Instruct: grow an instruction dataset from seeds with a teacher model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "parsing": [
            "ParsedInstance",
            "ParsedList",
            "looks_like_classification",
            "parse_instance",
            "parse_instruction_list",
            "parse_yes_no",
        ],
        "pipeline": ["SelfInstruct"],
        "result": ["OUTPUT_COLUMNS", "SelfInstructResult", "SelfInstructSummary"],
        "self_instruct_config": ["SelfInstructConfig"],
        "steps": [
            "add_messages",
            "build_instruction_requests",
            "classify_tasks",
            "explode_instructions",
            "generate_instances",
            "generate_instructions",
            "prepare_seed_pool",
            "score_instances",
            "score_instructions",
        ],
    },
)

if TYPE_CHECKING:  # pragma: no cover
    from .parsing import (
        ParsedInstance,
        ParsedList,
        looks_like_classification,
        parse_instance,
        parse_instruction_list,
        parse_yes_no,
    )
    from .pipeline import SelfInstruct
    from .result import OUTPUT_COLUMNS, SelfInstructResult, SelfInstructSummary
    from .self_instruct_config import SelfInstructConfig
    from .steps import (
        add_messages,
        build_instruction_requests,
        classify_tasks,
        explode_instructions,
        generate_instances,
        generate_instructions,
        prepare_seed_pool,
        score_instances,
        score_instructions,
    )
