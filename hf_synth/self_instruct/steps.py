"""The Self-Instruct steps, each a function that takes a ``Dataset`` and returns one.

Generation steps are batched ``Dataset.map`` functions that call the engine once per map batch (the engine
then sorts and sub-batches the prompts). Filter steps add ``filter_reasons`` and ``scores`` columns, so
rows can be inspected before :func:`~hf_synth.filters.split_filtered` drops them with ``Dataset.filter``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from typing import Any

from datasets import Dataset

from ..engine import Engine
from ..engine.protocol import with_prefill
from ..filters.heuristics import (
    hygiene_reasons,
    instruction_reasons,
    output_reasons,
    refusal_reasons,
    truncated_reasons,
    word_count,
)
from ..filters.rouge import RougeLIndex, rouge_l_f, rouge_tokens
from ..prompts import render_messages
from ..rows import add_messages as add_messages  # a Self-Instruct step too (README)
from ..rows import (
    engine_map,
    fresh_fingerprint,
    iter_instructions,
    journaled,
    map_in_one_batch,
    unique_ids,
)
from .parsing import (
    looks_like_classification,
    normalize_space,
    parse_instance,
    parse_instruction_list,
    parse_yes_no,
)
from .self_instruct_config import SelfInstructConfig

TEMPLATE_INSTRUCTIONS = "self_instruct/generate_instructions"
TEMPLATE_CLASSIFY = "self_instruct/classify_task"
TEMPLATE_INPUT_FIRST = "self_instruct/input_first"
TEMPLATE_OUTPUT_FIRST = "self_instruct/output_first"

SOURCE = "self-instruct"


# ---------------------------------------------------------------------------- seeds
def prepare_seed_pool(dataset: Dataset, config: SelfInstructConfig) -> Dataset:
    """Normalise any dataset with an instruction column into the seed pool.

    Output columns: ``id``, ``instruction``, ``input``, ``output``, ``is_classification`` (``None`` when
    unknown) and ``source == "seed"``. Input/output come from ``input_column``/``output_column`` or the
    first element of a Self-Instruct style ``instances`` column. Rows with an empty instruction are dropped.
    """
    columns = set(dataset.column_names)
    ids = unique_ids(dataset)
    rows = []
    for i, row, instruction in iter_instructions(dataset, config.instruction_column, "seed"):
        example_input = row.get(config.input_column) if config.input_column in columns else None
        example_output = row.get(config.output_column) if config.output_column in columns else None
        instances = row.get("instances") if "instances" in columns else None
        if example_input is None and example_output is None and instances:
            first = instances[0] if isinstance(instances, list) else None
            if isinstance(first, dict):
                example_input, example_output = first.get("input"), first.get("output")
        is_cls = row.get("is_classification") if "is_classification" in columns else None
        rows.append(
            {
                "id": ids[i] if ids is not None else f"seed-{i:05d}",
                "instruction": instruction,
                "input": str(example_input or ""),
                "output": str(example_output or ""),
                "is_classification": bool(is_cls) if isinstance(is_cls, bool) else None,
                "source": "seed",
            }
        )
    return Dataset.from_list(rows)


# ---------------------------------------------------------------------------- instruction generation
#: Prompts per round when ``requests_per_round`` is set to nothing and no size is given.
DEFAULT_REQUESTS_PER_ROUND = 16
#: Rounds a run is sized to take (each round asks for about a this-many-th of the target).
TARGET_ROUNDS = 20


def round_requests(
    config: SelfInstructConfig, remaining: int, width: int, kept: int = 0, requests: int = 0
) -> int:
    """How many few-shot prompts the next round sends.

    With ``requests_per_round`` set: that many, or fewer when only ``remaining`` instructions are still
    needed (three times the prompts those would take if every parsed instruction were kept). Otherwise
    (the default): the prompts ``remaining`` needs at the keep rate observed so far (``kept`` of
    ``requests``; half of ``num_new_per_request`` before anything is known), plus 10%, but no more than
    the larger of the engine's ``width`` and a :data:`TARGET_ROUNDS`-th of the whole target, so the
    engine gets at least ``width`` prompts whenever that much work is left.
    """
    if remaining <= 0:
        return 0
    if config.requests_per_round is not None:
        return max(1, min(config.requests_per_round, -(-3 * remaining // config.num_new_per_request)))
    per_request = kept / requests if kept and requests else config.num_new_per_request / 2
    needed = math.ceil(1.1 * remaining / per_request)
    share = math.ceil(config.num_instructions / per_request / TARGET_ROUNDS)
    return max(1, min(needed, max(width, share)))


def build_instruction_requests(
    seeds: Sequence[dict],
    machine: Sequence[dict],
    config: SelfInstructConfig,
    round_index: int,
    remaining: int | None = None,
    *,
    count: int | None = None,
) -> Dataset:
    """Few-shot prompts for one round: ``num_seed_examples`` human seeds mixed with
    ``num_machine_examples`` instructions generated in earlier rounds, in random order.

    ``count`` prompts are built (see :func:`round_requests`); without it, ``requests_per_round`` (16 when
    unset), or fewer when only ``remaining`` instructions are still needed (three times the prompts those
    would take if every parsed instruction were kept).

    The prompt prefills the assistant's turn with the examples as a numbered list, so the teacher
    continues the list (this works far better with small chat models than asking for a list cold).
    """
    # Rounds count from 1 (round 0: the seeds); the stream keeps the key it had when they counted from 0,
    # so the same seed still samples the same few-shot examples.
    rng = random.Random(f"{config.seed}-round-{round_index - 1}")
    if count is None:
        count = config.requests_per_round or DEFAULT_REQUESTS_PER_ROUND
        if remaining is not None:
            count = max(1, min(count, -(-3 * remaining // config.num_new_per_request)))
    seeds, machine = list(seeds), list(machine)  # once per round, not once per prompt
    rows = []
    for r in range(count):
        examples = rng.sample(seeds, min(config.num_seed_examples, len(seeds)))
        if machine and config.num_machine_examples:
            examples += rng.sample(machine, min(config.num_machine_examples, len(machine)))
        rng.shuffle(examples)
        texts = [normalize_space(e["instruction"]) for e in examples]
        messages = render_messages(
            TEMPLATE_INSTRUCTIONS,
            examples=texts,
            num_new=config.num_new_per_request,
            focus_skills=[s.replace("_", " ") for s in config.focus_skills],
        )
        rows.append(
            {
                "request_id": f"r{round_index:03d}-q{r:04d}",
                "round": round_index,
                "prompt": messages,
                "list_prefix": f"{len(texts) + 1}.",
                "parent_ids": [e["id"] for e in examples],
            }
        )
    return Dataset.from_list(rows)


def _completion_columns(outputs) -> dict[str, list]:
    return {
        "completion": [o.text for o in outputs],
        "completion_tokens": [o.completion_tokens for o in outputs],
        "finish_reason": [o.finish_reason for o in outputs],
    }


def generate_instructions(
    requests: Dataset, engine: Engine, config: SelfInstructConfig, *, checkpointer=None, name="gen"
) -> Dataset:
    """Ask the teacher to continue each request's list; adds ``completion`` (prefixed with the next list
    number), ``completion_tokens``, ``finish_reason``, ``parsed`` and ``parse_error``."""

    engine = journaled(engine, checkpointer)

    def _map(batch: dict[str, list]) -> dict[str, list]:
        outputs = engine.generate(batch["prompt"], config.instruction_sampling, desc="Instructions")
        columns = _completion_columns(outputs)
        columns["completion"] = [
            f"{p} {c}" for p, c in zip(batch["list_prefix"], columns["completion"], strict=True)
        ]
        parsed = [
            parse_instruction_list(text, truncated=reason == "length", max_items=config.num_new_per_request)
            for text, reason in zip(columns["completion"], columns["finish_reason"], strict=True)
        ]
        columns["parsed"] = [p.items for p in parsed]
        columns["parse_error"] = [p.error or "" for p in parsed]
        return columns

    return engine_map(
        requests, _map, checkpointer, name, engine, config.checkpoint_every, "Generating instructions"
    )


def explode_instructions(requests: Dataset) -> Dataset:
    """One row per parsed instruction: ``id``, ``instruction``, ``round``, ``request_id``, ``parent_ids``."""

    def _explode(batch: dict[str, list]) -> dict[str, list]:
        out: dict[str, list] = {"id": [], "instruction": [], "round": [], "request_id": [], "parent_ids": []}
        for request_id, round_index, parents, items in zip(
            batch["request_id"], batch["round"], batch["parent_ids"], batch["parsed"], strict=True
        ):
            for k, item in enumerate(items):
                out["id"].append(f"si-{request_id}-{k:02d}")
                out["instruction"].append(item)
                out["round"].append(round_index)
                out["request_id"].append(request_id)
                out["parent_ids"].append(parents)
        return out

    return requests.map(_explode, batched=True, remove_columns=requests.column_names, keep_in_memory=True)


# ---------------------------------------------------------------------------- instruction filters
def score_instructions(
    candidates: Dataset, pool: RougeLIndex, pool_ids: Sequence[str], config: SelfInstructConfig
) -> Dataset:
    """Add ``filter_reasons`` and ``scores`` (``words``, ``rouge_l_max``, ``rouge_l_nearest``).

    Rules run first (start character, length, blocked keywords). Rows that pass them get ROUGE-L against
    the pool *and* the candidates accepted before them in this dataset (order-dependent, as in the paper);
    ``pool`` itself is not modified. ``rouge_l_nearest`` is the id of the closest text.
    """
    local = RougeLIndex()
    local_ids: list[str] = []

    def _score(batch: dict[str, list]) -> dict[str, list]:
        reasons_col, scores_col = [], []
        for row_id, text in zip(batch["id"], batch["instruction"], strict=True):
            reasons = instruction_reasons(
                text,
                min_words=config.min_instruction_words,
                max_words=config.max_instruction_words,
                blocked_keywords=config.blocked_keywords,
            )
            best, nearest = 0.0, ""
            if not reasons:
                tokens = rouge_tokens(text)
                global_match = pool.best_match_tokens(tokens)
                local_match = local.best_match_tokens(tokens)
                if global_match.score >= local_match.score and global_match.index >= 0:
                    best, nearest = global_match.score, pool_ids[global_match.index]
                elif local_match.index >= 0:
                    best, nearest = local_match.score, local_ids[local_match.index]
                if best >= config.rouge_l_threshold:
                    reasons = ["rouge_l_too_similar"]
                else:
                    local.add_tokens(tokens)
                    local_ids.append(row_id)
            reasons_col.append(reasons)
            scores_col.append(
                {"words": word_count(text), "rouge_l_max": float(best), "rouge_l_nearest": nearest}
            )
        return {"filter_reasons": reasons_col, "scores": scores_col}

    # Sequential on purpose: the greedy decision of a row depends on the rows before it.
    return candidates.map(_score, batched=True, keep_in_memory=True, new_fingerprint=fresh_fingerprint())


# ---------------------------------------------------------------------------- task type
def classify_tasks(
    dataset: Dataset, engine: Engine, config: SelfInstructConfig, *, checkpointer=None, name="cls"
) -> Dataset:
    """Decide input-first vs output-first: adds ``is_classification`` and ``task_type_source``
    (``"llm"``, ``"heuristic"``, or ``"heuristic_fallback"`` when the teacher's verdict was unparsable)."""

    engine = journaled(engine, checkpointer)

    def _map(batch: dict[str, list]) -> dict[str, list]:
        heuristic = [looks_like_classification(t) for t in batch["instruction"]]
        if config.task_type_method == "heuristic":
            return {
                "is_classification": heuristic,
                "task_type_source": ["heuristic"] * len(heuristic),
                "task_type_raw": [""] * len(heuristic),
            }
        prompts = [render_messages(TEMPLATE_CLASSIFY, instruction=t) for t in batch["instruction"]]
        outputs = engine.generate(prompts, config.task_type_sampling, desc="Task types")
        verdicts = [parse_yes_no(o.text) for o in outputs]
        return {
            "is_classification": [h if v is None else v for v, h in zip(verdicts, heuristic, strict=True)],
            "task_type_source": ["heuristic_fallback" if v is None else "llm" for v in verdicts],
            "task_type_raw": [o.text for o in outputs],
        }

    return engine_map(dataset, _map, checkpointer, name, engine, config.checkpoint_every, "Classifying tasks")


# ---------------------------------------------------------------------------- instances
def _pick_demonstration(pool: Sequence[dict], key: str) -> dict | None:
    return random.Random(key).choice(pool) if pool else None


def generate_instances(
    dataset: Dataset,
    engine: Engine,
    config: SelfInstructConfig,
    demonstrations: Sequence[dict] = (),
    *,
    checkpointer=None,
    name="inst",
) -> Dataset:
    """Generate one input/output instance per task: output-first for classification tasks (label, then an
    input of that label), input-first otherwise.

    Each prompt shows one demonstration drawn from ``demonstrations`` (seed rows with an output; for
    output-first, classification seeds with an input), so the format example varies from row to row
    instead of one fixed example the teacher could copy. Adds ``input``, ``output``, ``generation_order``,
    ``demonstration_id``, ``instance_completion``, ``instance_tokens`` and ``instance_parse_error``.
    """
    engine = journaled(engine, checkpointer)
    generation_demos = [d for d in demonstrations if d["output"] and not d.get("is_classification")]
    classification_demos = [
        d for d in demonstrations if d["output"] and d["input"] and d.get("is_classification")
    ]

    def _map(batch: dict[str, list]) -> dict[str, list]:
        prompts, demo_ids = [], []
        for row_id, text, is_cls in zip(
            batch["id"], batch["instruction"], batch["is_classification"], strict=True
        ):
            pool = classification_demos if is_cls else generation_demos
            demo = _pick_demonstration(pool, f"{config.seed}-demo-{row_id}")
            template = TEMPLATE_OUTPUT_FIRST if is_cls else TEMPLATE_INPUT_FIRST
            messages = render_messages(template, instruction=text, example=demo)
            prompts.append(messages)
            demo_ids.append(demo["id"] if demo else "")
        outputs = engine.generate(prompts, config.instance_sampling, desc="Instances")
        columns: dict[str, list] = {
            k: []
            for k in (
                "input",
                "output",
                "generation_order",
                "instance_completion",
                "instance_tokens",
                "instance_parse_error",
            )
        }
        columns["demonstration_id"] = demo_ids
        for prompt, out, is_cls in zip(prompts, outputs, batch["is_classification"], strict=True):
            text = with_prefill(prompt, out.text)
            parsed = parse_instance(text, output_first=bool(is_cls))
            columns["input"].append(parsed.input)
            columns["output"].append(parsed.output)
            columns["generation_order"].append("output-first" if is_cls else "input-first")
            columns["instance_completion"].append(text)
            columns["instance_tokens"].append(out.completion_tokens)
            columns["instance_parse_error"].append(parsed.error or "")
        return columns

    return engine_map(
        dataset, _map, checkpointer, name, engine, config.checkpoint_every, "Generating instances"
    )


def _copies(text: str, reference: str, threshold: float) -> bool:
    tokens, ref = rouge_tokens(text), rouge_tokens(reference)
    return len(ref) >= 3 and rouge_l_f(tokens, ref) >= threshold


def score_instances(
    dataset: Dataset, config: SelfInstructConfig, demonstrations: Sequence[dict] = ()
) -> Dataset:
    """Append instance-level reasons to ``filter_reasons``: unparsable replies (``malformed:<why>``),
    empty or copied outputs, refusals ("As an AI language model…"), and inputs/outputs that copy the
    demonstration shown in the prompt (``copies_demonstration``, ROUGE-L >= ``rouge_l_threshold``)."""
    demos = {d["id"]: d for d in demonstrations}
    toxic: dict[str, list[float]] = {}
    if config.filter_toxicity and len(dataset):
        from ..filters.toxicity import toxicity_scores

        toxic = {c: toxicity_scores(dataset[c]) for c in ("instruction", "input", "output")}
    limit = config.instance_sampling.max_new_tokens

    def _score(row: dict[str, Any], index: int) -> list[str]:
        reasons = list(row["filter_reasons"])
        if row["instance_parse_error"]:
            reasons.append(f"malformed:{row['instance_parse_error']}")
        else:
            reasons += output_reasons(row["instruction"], row["input"], row["output"])
            if config.filter_refusals:
                reasons += refusal_reasons(row["output"])
            if config.filter_broken_text:
                reasons += truncated_reasons(row["instance_tokens"], limit, field="instance")
                reasons += hygiene_reasons(row["input"], field="input")
                reasons += hygiene_reasons(row["output"], field="output")
            reasons += [
                f"toxic:{c}" for c, scores in toxic.items() if scores[index] >= config.toxicity_threshold
            ]
            demo = demos.get(row.get("demonstration_id") or "")
            if demo is not None:
                copied = _copies(row["input"], demo["input"], config.rouge_l_threshold)
                if row["generation_order"] == "input-first":
                    copied = copied or _copies(row["output"], demo["output"], config.rouge_l_threshold)
                if copied:
                    reasons.append("copies_demonstration")
        return reasons

    def _score_batch(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
        names = list(batch)
        rows = (dict(zip(names, values, strict=True)) for values in zip(*batch.values(), strict=True))
        return {"filter_reasons": [_score(row, i) for row, i in zip(rows, indices, strict=True)]}

    # Batched (a per-row map costs more than the checks), one batch per round's rows: column types are
    # taken from the first batch, so a first batch with no reason at all must not fix them.
    return map_in_one_batch(dataset, _score_batch)
