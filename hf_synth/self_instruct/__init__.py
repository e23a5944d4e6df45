"""Self-Instruct: grow an instruction dataset from seeds with a teacher model."""

from .parsing import (
    ParsedInstance,
    ParsedList,
    looks_like_classification,
    parse_instance,
    parse_instruction_list,
    parse_yes_no,
)
from .pipeline import OUTPUT_COLUMNS, SelfInstruct, SelfInstructResult, SelfInstructSummary
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

__all__ = [
    "OUTPUT_COLUMNS",
    "ParsedInstance",
    "ParsedList",
    "SelfInstruct",
    "SelfInstructConfig",
    "SelfInstructResult",
    "SelfInstructSummary",
    "add_messages",
    "build_instruction_requests",
    "classify_tasks",
    "explode_instructions",
    "generate_instances",
    "generate_instructions",
    "looks_like_classification",
    "parse_instance",
    "parse_instruction_list",
    "parse_yes_no",
    "prepare_seed_pool",
    "score_instances",
    "score_instructions",
]
