"""The Evol-Instruct steps, each taking and returning a ``Dataset``.

A round: :func:`build_evolution_requests` (choose an operation per row) → :func:`evolve_instructions`
(teacher rewrites) → :func:`check_evolutions` (cheap elimination rules) → :func:`judge_evolutions` (LLM
judge) → :func:`generate_responses` (answers, then empty answers and refusals are eliminated). Reasons accumulate in
``elimination_reasons``; rows are never dropped inside a step, so every failed evolution stays inspectable.
"""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

from datasets import Dataset, Features, List, Value

from ..answers import parse_yes_no
from ..checkpoint import Checkpointer
from ..engine import Engine
from ..engine.protocol import with_prefill
from ..filters.complexity import complexity_features
from ..filters.heuristics import (
    STOP_WORDS,
    content_reasons,
    hygiene_reasons,
    refusal_reasons,
    truncated_reasons,
)
from ..filters.rouge import rouge_l_f, rouge_tokens
from ..prompts import render_messages
from ..rows import engine_map, iter_instructions, journaled, unique_ids, user_content
from .evol_instruct_config import IN_DEPTH, OPERATIONS, EvolInstructConfig
from .parsing import JUDGE_QUESTIONS, combine_verdict, parse_evolved_instruction

_WORD = re.compile(r"\w+", re.UNICODE)
TEMPLATE_IN_DEPTH = "evol_instruct/in_depth"
TEMPLATE_BREADTH = "evol_instruct/breadth"
TEMPLATE_JUDGE = "evol_instruct/judge"

JUDGE_FEATURES = {
    "coherent": Value("bool"),
    "solvable": Value("bool"),
    "more_complex": Value("bool"),
    "score": Value("float64"),
    "parsed": Value("bool"),
    "error": Value("string"),
}
SCORE_FEATURES = {
    "words": Value("int64"),
    "words_parent": Value("int64"),
    "clauses": Value("int64"),
    "clauses_parent": Value("int64"),
    "constraints": Value("int64"),
    "constraints_parent": Value("int64"),
    "rouge_l_parent": Value("float64"),
}


def prepare_roots(dataset: Dataset, config: EvolInstructConfig) -> Dataset:
    """Normalise any instruction dataset into lineage roots: ``id``, ``instruction``, ``root_id``, ``round``.

    An input column (if present) is appended to the instruction after a blank line: evolution rewrites
    the whole prompt. Existing unique ``id`` values are kept (so lineages point back to e.g. Self-Instruct
    rows); rows with an empty instruction are skipped.
    """
    ids = unique_ids(dataset)
    has_input = config.input_column in dataset.column_names
    rows = []
    for i, row, instruction in iter_instructions(dataset, config.instruction_column, "input"):
        text = user_content(instruction, (row[config.input_column] or "").strip() if has_input else "")
        row_id = ids[i] if ids is not None else f"root-{i:05d}"
        rows.append({"id": row_id, "instruction": text, "root_id": row_id, "round": 0})
    return Dataset.from_list(rows)


def choose_operation(config: EvolInstructConfig, root_id: str, round_index: int) -> str:
    """The operation for one row: a weighted draw, deterministic in (seed, root, round)."""
    weights = [config.operation_weights.get(op, 0.0) for op in OPERATIONS]
    return random.Random(f"{config.seed}-{round_index}-{root_id}").choices(OPERATIONS, weights=weights)[0]


def build_evolution_requests(parents: Dataset, config: EvolInstructConfig, round_index: int) -> Dataset:
    """One evolution request per parent: ``id`` (``<root>-r<round>``), ``parent_id``, ``parent_instruction``,
    ``root_id``, ``round``, ``evolution_op`` and the chat ``prompt``."""
    rows = []
    for parent in parents:
        op = choose_operation(config, parent["root_id"], round_index)
        if op in IN_DEPTH:
            prompt = render_messages(TEMPLATE_IN_DEPTH, operation=op, instruction=parent["instruction"])
        else:
            prompt = render_messages(TEMPLATE_BREADTH, instruction=parent["instruction"])
        rows.append(
            {
                "id": f"{parent['root_id']}-r{round_index}",
                "parent_id": parent["id"],
                "parent_instruction": parent["instruction"],
                "root_id": parent["root_id"],
                "round": round_index,
                "evolution_op": op,
                "prompt": prompt,
            }
        )
    return Dataset.from_list(rows)


def new_content_words(evolved: str, parent: str) -> set[str]:
    """Words of ``evolved`` that are neither stop words nor in ``parent`` (case-insensitive)."""
    old = set(_WORD.findall(parent.lower()))
    return {
        w for w in _WORD.findall(evolved.lower()) if w not in old and w not in STOP_WORDS and not w.isdigit()
    }


def evolve_instructions(
    requests: Dataset,
    engine: Engine,
    config: EvolInstructConfig,
    *,
    checkpointer: Checkpointer | None = None,
    name: str = "evolve",
) -> Dataset:
    """Ask the evolver to rewrite each parent; adds ``instruction`` (parsed), ``evolution_completion``,
    ``evolution_tokens`` and ``evolution_parse_error``."""

    engine = journaled(engine, checkpointer)

    def _map(batch: dict[str, list]) -> dict[str, list]:
        outputs = engine.generate(batch["prompt"], config.evolution_sampling, desc="Evolving")
        texts = [with_prefill(p, o.text).strip() for p, o in zip(batch["prompt"], outputs, strict=True)]
        parsed = [parse_evolved_instruction(t) for t in texts]
        return {
            "instruction": [p.instruction for p in parsed],
            "evolution_completion": texts,
            "evolution_tokens": [o.completion_tokens for o in outputs],
            "evolution_parse_error": [p.error or "" for p in parsed],
        }

    return engine_map(
        requests, _map, checkpointer, name, engine, config.checkpoint_every, "Evolving instructions"
    )


def check_evolutions(dataset: Dataset, config: EvolInstructConfig) -> Dataset:
    """Cheap elimination rules; adds ``elimination_reasons`` and ``scores``.

    Reasons: ``malformed:<why>`` (no instruction in the reply), ``instruction_no_words`` /
    ``instruction_too_short`` / ``instruction_only_stop_words``, ``refusal``, ``copies_scaffolding`` (a
    phrase of our prompts the parent did not contain), ``no_new_information`` (in-depth rewrite with
    ROUGE-L >= ``max_parent_similarity`` to its parent), ``shorter_than_parent`` (an in-depth rewrite
    with fewer words than its parent asks for less, not more), ``trivial_edit`` (an in-depth rewrite that
    adds fewer than ``min_new_words`` content words its parent did not have), ``too_similar_to_parent`` (breadth
    expansion with ROUGE-L >= ``breadth_max_similarity``).
    """
    phrases = [p.lower() for p in config.scaffolding_phrases]

    def _check(row: dict[str, Any]) -> dict[str, Any]:
        evolved, parent = row["instruction"], row["parent_instruction"]
        new, old = complexity_features(evolved), complexity_features(parent)
        similarity = rouge_l_f(rouge_tokens(evolved), rouge_tokens(parent)) if evolved else 0.0
        scores = {
            "words": new["words"],
            "words_parent": old["words"],
            "clauses": new["clauses"],
            "clauses_parent": old["clauses"],
            "constraints": new["constraints"],
            "constraints_parent": old["constraints"],
            "rouge_l_parent": similarity,
        }
        if row["evolution_parse_error"]:
            return {"elimination_reasons": [f"malformed:{row['evolution_parse_error']}"], "scores": scores}
        reasons = content_reasons(evolved, config.min_words) or refusal_reasons(evolved)
        if not reasons and config.filter_broken_text:
            reasons = hygiene_reasons(evolved, field="instruction")
        lowered, parent_lowered = evolved.lower(), parent.lower()
        if not reasons and any(p in lowered and p not in parent_lowered for p in phrases):
            reasons = ["copies_scaffolding"]
        if not reasons:
            if row["evolution_op"] in IN_DEPTH and similarity >= config.max_parent_similarity:
                reasons = ["no_new_information"]
            elif row["evolution_op"] in IN_DEPTH and new["words"] < old["words"]:
                reasons = ["shorter_than_parent"]
            elif (
                row["evolution_op"] in IN_DEPTH
                and len(new_content_words(evolved, parent)) < config.min_new_words
            ):
                reasons = ["trivial_edit"]
            elif row["evolution_op"] not in IN_DEPTH and similarity >= config.breadth_max_similarity:
                reasons = ["too_similar_to_parent"]
        return {"elimination_reasons": reasons, "scores": scores}

    features = dataset.features.copy()
    features["elimination_reasons"] = List(Value("string"))
    features["scores"] = SCORE_FEATURES
    return dataset.map(_check, keep_in_memory=True, features=features)


JUDGE_PROBES = Path(__file__).resolve().parent.parent / "prompts" / "evol_instruct" / "judge_probes.json"


def calibrate_judge(engine: Engine, config: EvolInstructConfig) -> dict[str, Any]:
    """Ask the judge control questions whose answers are known (``judge_probes.json``: a real rewrite and an
    unchanged copy for "more complex", a sensible and a scrambled rewrite for "coherent").

    A judge that answers every question the same way -- as the embedded 135M model does ("No" to all) --
    fails them; its verdicts carry no information. Returns ``passed``, ``correct``, ``total`` and the
    ``answers``.
    """
    probes = json.loads(JUDGE_PROBES.read_text(encoding="utf-8"))
    prompts = [
        render_messages(TEMPLATE_JUDGE, parent=p["parent"], evolved=p["evolved"], question=p["question"])
        for p in probes
    ]
    outputs = engine.generate(prompts, config.judge_sampling, desc="Judge self-check", progress=False)
    answers = [parse_yes_no(o.text) for o in outputs]
    correct = sum(a is p["expected"] for a, p in zip(answers, probes, strict=True))
    return {
        "passed": correct == len(probes),
        "correct": correct,
        "total": len(probes),
        "answers": [o.text.strip() for o in outputs],
    }


def judge_evolutions(
    dataset: Dataset,
    engine: Engine,
    config: EvolInstructConfig,
    *,
    enforce: bool = True,
    checkpointer: Checkpointer | None = None,
    name: str = "judge",
) -> Dataset:
    """LLM judge on rows still alive, one short question per prompt (coherent? solvable? more complex than
    the parent? -- in-depth operations only -- and a 1-10 score). Adds ``judge`` (the parsed answers, nulls
    where not asked or unparsable, ``parsed``, ``error``) and ``judge_raw`` (the replies as JSON), and
    appends ``judge_incoherent``, ``judge_unsolvable``, ``judge_not_more_complex``, ``judge_low_score`` or
    ``judge_unparsable`` to ``elimination_reasons``."""
    engine = journaled(engine, checkpointer)
    empty_verdict = dict.fromkeys(JUDGE_FEATURES) | {"parsed": False, "error": "not_judged"}

    def _map(batch: dict[str, list]) -> dict[str, list]:
        asked: list[tuple[int, str]] = []  # (row, question) per prompt
        prompts = []
        for i, reasons in enumerate(batch["elimination_reasons"]):
            if reasons:
                continue
            for question in JUDGE_QUESTIONS:
                if question == "more_complex" and batch["evolution_op"][i] not in IN_DEPTH:
                    continue
                asked.append((i, question))
                prompts.append(
                    render_messages(
                        TEMPLATE_JUDGE,
                        parent=batch["parent_instruction"][i],
                        evolved=batch["instruction"][i],
                        question=question,
                    )
                )
        outputs = engine.generate(prompts, config.judge_sampling, desc="Judging") if prompts else []
        answers: dict[int, dict[str, str]] = {}
        for (i, question), out in zip(asked, outputs, strict=True):
            answers.setdefault(i, {})[question] = out.text.strip()
        verdicts = [dict(empty_verdict) for _ in batch["id"]]
        raws = [""] * len(batch["id"])
        reasons_col = [list(r) for r in batch["elimination_reasons"]]
        for i, replies in answers.items():
            raws[i] = json.dumps(replies, ensure_ascii=False)
            verdict = combine_verdict(replies)
            verdicts[i] = verdict.to_dict()
            if not enforce:  # recorded for inspection, but the judge failed its self-check
                verdicts[i]["error"] = ";".join(filter(None, [verdict.error, "not_enforced"]))
                continue
            reasons = reasons_col[i]
            if not verdict.parsed and config.judge_unparsable == "eliminate":
                reasons.append("judge_unparsable")
            # answers that did parse count even when another did not: a clear "No" is a reason of its own
            if verdict.coherent is False:
                reasons.append("judge_incoherent")
            if verdict.solvable is False:
                reasons.append("judge_unsolvable")
            if verdict.more_complex is False:
                reasons.append("judge_not_more_complex")
            if verdict.score is not None and verdict.score < config.min_judge_score:
                reasons.append("judge_low_score")
        return {"judge": verdicts, "judge_raw": raws, "elimination_reasons": reasons_col}

    if not config.use_judge:
        return dataset.map(
            lambda _: {"judge": empty_verdict | {"error": "judge_off"}, "judge_raw": ""},
            keep_in_memory=True,
            features=_with_judge(dataset.features),
        )
    features = _with_judge(dataset.features)
    every = config.checkpoint_every
    return engine_map(dataset, _map, checkpointer, name, engine, every, "Judging evolutions", features)


def _with_judge(features: Features) -> Features:
    features = features.copy()
    features["judge"] = JUDGE_FEATURES
    features["judge_raw"] = Value("string")
    return features


def generate_responses(
    dataset: Dataset,
    engine: Engine,
    config: EvolInstructConfig,
    *,
    checkpointer: Checkpointer | None = None,
    name: str = "respond",
) -> Dataset:
    """Answer the surviving evolved instructions with the response model; adds ``output`` and
    ``response_tokens`` (empty/0 for eliminated rows, which are not answered), then appends
    ``response_empty`` or ``response_refusal`` to ``elimination_reasons``."""

    engine = journaled(engine, checkpointer)

    def _map(batch: dict[str, list]) -> dict[str, list]:
        alive = [i for i, reasons in enumerate(batch["elimination_reasons"]) if not reasons]
        outputs = (
            engine.generate(
                [batch["instruction"][i] for i in alive], config.response_sampling, desc="Responding"
            )
            if alive
            else []
        )
        texts, tokens = [""] * len(batch["id"]), [0] * len(batch["id"])
        reasons_col = [list(r) for r in batch["elimination_reasons"]]
        limit = config.response_sampling.max_new_tokens
        for i, out in zip(alive, outputs, strict=True):
            texts[i], tokens[i] = out.text.strip(), out.completion_tokens
            if not texts[i]:
                reasons_col[i].append("response_empty")
            elif refusal_reasons(texts[i]):
                reasons_col[i].append("response_refusal")
            elif config.filter_broken_text:
                reasons_col[i] += truncated_reasons(tokens[i], limit, field="response") or hygiene_reasons(
                    texts[i], field="response"
                )
        if config.filter_toxicity and alive:
            from ..filters.toxicity import toxicity_scores

            for column, column_texts in (
                ("instruction", [batch["instruction"][i] for i in alive]),
                ("output", [texts[i] for i in alive]),
            ):
                for i, score in zip(alive, toxicity_scores(column_texts), strict=True):
                    if score >= config.toxicity_threshold:
                        reasons_col[i].append(f"toxic:{column}")
        return {"output": texts, "response_tokens": tokens, "elimination_reasons": reasons_col}

    features = dataset.features.copy()
    features["output"] = Value("string")
    features["response_tokens"] = Value("int64")
    every = config.checkpoint_every
    return engine_map(dataset, _map, checkpointer, name, engine, every, "Generating responses", features)
