import json
import logging

import pytest
from datasets import Dataset

from hf_synth import CheckpointMismatchError, EvolInstruct, EvolInstructConfig
from hf_synth.evol_instruct import (
    EVOL_COLUMNS,
    OPERATIONS,
    choose_operation,
    combine_verdict,
    parse_evolved_instruction,
    parse_score,
    prepare_roots,
)
from hf_synth.evol_instruct.steps import JUDGE_PROBES

from .conftest import ScriptedEngine

ROOTS = [
    {"id": "a", "instruction": "Write a poem about the sea."},
    {"id": "b", "instruction": "Explain how rainbows form."},
    {"id": "c", "instruction": "Give three tips for learning a language."},
    {"id": "d", "instruction": "Summarize the plot of a famous novel."},
]
PROBE_ANSWERS = {  # the judge self-check: answers a competent judge gives to judge_probes.json
    "lighthouse and a storm": " Yes",
    "always appear in the same order": " Yes",
    "banana seven": " No",
}


def _section(text: str, start: str, end: str) -> str:
    return text.split(start, 1)[1].split(end, 1)[0].strip()


def evolver(evolve, judge=None, respond=None):
    """A scripted teacher. ``evolve(parent, op) -> reply``; ``judge(parent, evolved, question) -> reply``;
    ``respond(instruction) -> reply``."""

    def reply(text: str) -> str:
        if "Your job is to rewrite an instruction" in text or "Your job is to invent" in text:
            parent = (
                _section(text, "instruction:\n", "\n").strip()
                if "Original instruction:" in text
                else _section(text, "Instruction for inspiration:\n", "\n")
            )
            if "Original instruction:" in text:
                parent = (
                    text.split("Original instruction:\n", 1)[1].split("\nRewritten instruction:")[0].strip()
                )
            op = (
                "breadth"
                if "Your job is to invent" in text
                else next(
                    op
                    for op, cue in [
                        ("deepening", "more depth"),
                        ("concretizing", "more concrete"),
                        ("reasoning", "multi-step reasoning"),
                        ("constraints", "Add one or two clear"),
                    ]
                    if cue in text
                )
            )
            return " " + evolve(parent, op)
        if "Here is an instruction for an AI assistant and a rewritten version" in text:
            parent = _section(text, "Original instruction:\n", "\n\nRewritten instruction:")
            evolved = _section(text, "Rewritten instruction:\n", "\n\n")
            for cue, answer in PROBE_ANSWERS.items():
                if cue in evolved:
                    return answer
            if evolved == parent:
                return " No"
            question = next(
                q
                for q, cue in [
                    ("coherent", "clear and sensible"),
                    ("solvable", "text alone"),
                    ("more_complex", "ask for more"),
                    ("score", "from 1"),
                ]
                if cue in text
            )
            return judge(parent, evolved, question) if judge else (" 8" if question == "score" else " Yes")
        return respond(text) if respond else f"Here is a careful answer to: {text[:40]}"

    return reply


def grow(parent: str, op: str) -> str:
    if op == "breadth":  # a new instruction in the same field, not an extension of the parent
        return f"Describe an unusual tradition connected to {parent.split()[-1].rstrip('.')} in a mountain village."
    bank = [
        "harbour",
        "glacier",
        "violin",
        "algebra",
        "lantern",
        "orchard",
        "satellite",
        "carnival",
        "compass",
        "volcano",
        "library",
        "bakery",
        "telescope",
        "meadow",
        "canyon",
        "festival",
    ]
    fresh = [w for w in bank if w not in parent][:3]
    return f"{parent.rstrip('.')}, and relate it to a {fresh[0]}, a {fresh[1]} and a {fresh[2]} ({op})."


def _run(config, reply, **kwargs):
    engine = ScriptedEngine(reply)
    return engine, EvolInstruct(engine, config, **kwargs).run(Dataset.from_list(ROOTS))


def test_every_operation_produces_rows_with_full_lineage():
    config = EvolInstructConfig(rounds=2, seed=1)
    _, result = _run(config, evolver(grow))
    ds = result.dataset
    assert ds.column_names == EVOL_COLUMNS
    assert len(ds) == 8 and result.summary.kept == 8 and result.summary.eliminated == 0
    by_id = {r["id"]: r for r in ds}
    for row in ds:
        assert row["root_id"] in {"a", "b", "c", "d"} and row["id"] == f"{row['root_id']}-r{row['round']}"
        expected_parent = row["root_id"] if row["round"] == 1 else f"{row['root_id']}-r1"
        assert row["parent_id"] == expected_parent
        if row["round"] == 2:
            assert row["parent_instruction"] == by_id[expected_parent]["instruction"]
        assert row["evolution_op"] in OPERATIONS
        assert row["output"].startswith("Here is a careful answer")
        assert row["messages"] == [
            {"role": "user", "content": row["instruction"]},
            {"role": "assistant", "content": row["output"]},
        ]
        assert row["judge"]["parsed"] and row["judge"]["score"] == 8.0
        if row["evolution_op"] != "breadth":
            assert row["scores"]["words"] > row["scores"]["words_parent"]
        assert row["model"] == row["judge_model"] == row["response_model"] == "scripted-teacher"
        assert json.loads(row["generation_params"])["evolution"]["temperature"] == 0.7
    assert result.summary.judge_enforced


@pytest.mark.parametrize("op", OPERATIONS)
def test_each_operation_uses_its_own_prompt(op):
    config = EvolInstructConfig(rounds=1, operation_weights={op: 1.0})
    engine, result = _run(config, evolver(grow))
    assert set(result.dataset["evolution_op"]) == {op}
    prompts = [t for call in engine.calls for t in call if "Your job is to" in t]
    assert len(prompts) == len(ROOTS)
    cue = {
        "deepening": "more depth",
        "concretizing": "more concrete",
        "reasoning": "multi-step reasoning",
        "constraints": "Add one or two clear",
        "breadth": "Your job is to invent",
    }[op]
    assert all(cue in p for p in prompts)


def test_operation_choice_follows_weights_and_is_deterministic():
    config = EvolInstructConfig(operation_weights={"deepening": 3, "breadth": 1})
    ops = [choose_operation(config, f"root-{i}", 1) for i in range(400)]
    assert set(ops) == {"deepening", "breadth"}
    assert 0.65 < ops.count("deepening") / 400 < 0.85
    assert ops == [choose_operation(config, f"root-{i}", 1) for i in range(400)]


ELIMINATIONS = {
    "Write a poem about the sea.": ("", "malformed:empty_output"),
    "Explain how rainbows form.": ("Explain it.", "instruction_too_short"),
    "Give three tips for learning a language.": (
        "I'm sorry, but I cannot rewrite this instruction for you.",
        "refusal",
    ),
    "Summarize the plot of a famous novel.": (
        "Here is the rewritten instruction above with more depth added.",
        "copies_scaffolding",
    ),
}


def test_rule_eliminations_each_with_its_reason():
    def evolve(parent, op):
        return ELIMINATIONS[parent][0]

    _, result = _run(EvolInstructConfig(rounds=1, operation_weights={"deepening": 1}), evolver(evolve))
    assert len(result.dataset) == 0
    reasons = {r["parent_instruction"]: r["elimination_reason"] for r in result.rejected}
    assert reasons == {parent: reason for parent, (_, reason) in ELIMINATIONS.items()}
    assert all(r["eliminated"] and r["output"] == "" for r in result.rejected)
    assert result.summary.reasons == {reason: 1 for _, reason in ELIMINATIONS.values()}


@pytest.mark.parametrize(
    "evolved, op, reason",
    [
        ("the of and to in it", "deepening", "instruction_only_stop_words"),
        ("!!! ??? ...", "deepening", "instruction_no_words"),
        ("Write a poem about the sea!", "deepening", "no_new_information"),
        ("Write a poem about sea.", "deepening", "no_new_information"),
        ("Compose verse about waves.", "concretizing", "shorter_than_parent"),
        ("Please write a poem about the sea for me.", "constraints", "trivial_edit"),
        ("So, write a short poem about the sea.", "deepening", "trivial_edit"),
        ("Write a poem about the sea, please.", "breadth", "too_similar_to_parent"),
    ],
)
def test_more_rule_eliminations(evolved, op, reason):
    config = EvolInstructConfig(rounds=1, operation_weights={op: 1}, use_judge=False)
    engine = ScriptedEngine(
        evolver(lambda parent, _: evolved if parent.startswith("Write a poem") else grow(parent, op))
    )
    result = EvolInstruct(engine, config).run(Dataset.from_list(ROOTS[:1]))
    assert result.rejected["elimination_reason"] == [reason]


def test_judge_eliminations_and_unparsable_verdicts_are_marked():
    verdicts = {
        "a": {"coherent": " No"},
        "b": {"solvable": " No."},
        "c": {"more_complex": " no"},
        "d": {"score": " eleven"},
    }

    def judge(parent, evolved, question):
        root = next(r["id"] for r in ROOTS if r["instruction"] == parent)
        default = " 6.5" if question == "score" else " Yes"
        return verdicts[root].get(question, default)

    config = EvolInstructConfig(rounds=1, operation_weights={"reasoning": 1}, min_judge_score=0)
    _, result = _run(config, evolver(grow, judge=judge))
    reasons = {r["root_id"]: r["elimination_reasons"] for r in result.rejected}
    assert reasons == {
        "a": ["judge_incoherent"],
        "b": ["judge_unsolvable"],
        "c": ["judge_not_more_complex"],
        "d": ["judge_unparsable"],
    }
    d = next(r for r in result.rejected if r["root_id"] == "d")
    assert d["judge"]["parsed"] is False and d["judge"]["score"] is None and "score" in d["judge"]["error"]
    assert json.loads(d["judge_raw"])["score"] == "eleven"


def test_low_judge_score_and_keeping_unparsable_verdicts():
    def judge(parent, evolved, question):
        if question == "score":
            return " 7.5" if "rainbows" in parent else (" 3/10" if "poem" in parent else " ?")
        return " Yes"

    config = EvolInstructConfig(
        rounds=1, operation_weights={"deepening": 1}, min_judge_score=5, judge_unparsable="keep"
    )
    _, result = _run(config, evolver(grow, judge=judge))
    kept = {r["root_id"]: r for r in result.dataset}
    assert kept["b"]["judge"]["score"] == 7.5
    assert set(kept) == {"b", "c", "d"} and not kept["c"]["judge"]["parsed"]
    assert result.rejected["elimination_reasons"] == [["judge_low_score"]]


def test_a_judge_that_fails_its_self_check_records_but_does_not_eliminate(caplog):
    constant_no = evolver(grow, judge=lambda *a: " No")

    def reply(text):  # answers even the control questions with "No"
        return " No" if "Here is an instruction for an AI assistant" in text else constant_no(text)

    _, result = _run(EvolInstructConfig(rounds=1, operation_weights={"deepening": 1}), reply)
    assert result.summary.judge_self_check["correct"] == 2 and not result.summary.judge_enforced
    assert len(result.dataset) == 4
    assert all(
        "not_enforced" in r["judge"]["error"] and r["judge"]["coherent"] is False for r in result.dataset
    )
    assert "control questions" in caplog.text
    _, strict = _run(
        EvolInstructConfig(rounds=1, operation_weights={"deepening": 1}, judge_self_check="ignore"), reply
    )
    assert len(strict.dataset) == 0


def test_response_eliminations():
    def respond(text):
        return (
            ""
            if "poem" in text
            else ("As an AI language model, I cannot." if "rainbows" in text else "Fine.")
        )

    _, result = _run(
        EvolInstructConfig(rounds=1, operation_weights={"deepening": 1}), evolver(grow, respond=respond)
    )
    reasons = {r["root_id"]: r["elimination_reason"] for r in result.rejected}
    assert reasons == {"a": "response_empty", "b": "response_refusal"}


@pytest.mark.parametrize("filtering", [True, False])
def test_broken_and_toxic_responses_are_eliminated(filtering):
    def respond(text):
        if "poem" in text:
            return "A poem (unfinished"
        if "rainbows" in text:
            return "Shut up, you stupid idiot, fuck off."
        return "Fine."

    config = EvolInstructConfig(
        rounds=1,
        operation_weights={"deepening": 1},
        filter_broken_text=filtering,
        filter_toxicity=filtering,
    )
    _, result = _run(config, evolver(grow, respond=respond))
    reasons = {r["root_id"]: r["elimination_reason"] for r in result.rejected}
    assert reasons == ({"a": "response_unbalanced", "b": "toxic:output"} if filtering else {})


def test_failed_rows_are_retried_from_their_parent_next_round():
    attempts = []

    def evolve(parent, op):
        attempts.append(parent)
        if parent == "Write a poem about the sea." and attempts.count(parent) == 1:
            return ""  # first attempt fails
        return grow(parent, op)

    config = EvolInstructConfig(rounds=2, operation_weights={"deepening": 1})
    _, result = _run(config, evolver(evolve))
    a_rows = sorted(
        (r for r in result.dataset.to_list() + result.rejected.to_list() if r["root_id"] == "a"),
        key=lambda r: r["round"],
    )
    assert [(r["round"], r["eliminated"], r["parent_id"]) for r in a_rows] == [
        (1, True, "a"),
        (2, False, "a"),
    ]
    _, no_retry = _run(
        EvolInstructConfig(rounds=2, operation_weights={"deepening": 1}, retry_failed=False),
        evolver(lambda p, op: "" if p.startswith("Write a poem") else grow(p, op)),
    )
    assert [r["round"] for r in no_retry.eliminated] == [1]


def test_different_judge_and_response_engines_are_used_and_recorded():
    evolve_engine = ScriptedEngine(evolver(grow), model_id="evolver")
    judge_engine = ScriptedEngine(evolver(grow), model_id="judge")
    response_engine = ScriptedEngine(
        evolver(grow, respond=lambda t: "from the responder"), model_id="responder"
    )
    result = EvolInstruct(
        evolve_engine,
        EvolInstructConfig(rounds=1),
        judge_engine=judge_engine,
        response_engine=response_engine,
    ).run(Dataset.from_list(ROOTS))
    row = result.dataset[0]
    assert (row["model"], row["judge_model"], row["response_model"]) == ("evolver", "judge", "responder")
    assert row["output"] == "from the responder"
    assert all("Here is an instruction for an AI assistant" in t for c in judge_engine.calls for t in c)
    assert not any("Here is an instruction for an AI assistant" in t for c in evolve_engine.calls for t in c)


def test_checkpoints_resume_and_refuse_changed_config(tmp_path):
    config = EvolInstructConfig(rounds=2, seed=3, checkpoint_every=2)
    _, first = _run(config, evolver(grow), checkpoint_dir=tmp_path)
    idle = evolver(grow)

    probes = json.loads(JUDGE_PROBES.read_text())

    def no_generation(text):
        if any(f"Rewritten instruction:\n{p['evolved']}\n" in text for p in probes):
            return idle(text)  # the judge self-check runs every time
        raise AssertionError("a finished round was recomputed")

    _, again = _run(config, no_generation, checkpoint_dir=tmp_path)
    assert again.dataset.to_list() == first.dataset.to_list()
    with pytest.raises(CheckpointMismatchError):
        _run(EvolInstructConfig(rounds=2, seed=4), evolver(grow), checkpoint_dir=tmp_path)


def test_input_column_is_appended_and_bad_input_is_rejected():
    ds = Dataset.from_list([{"task": "Translate to French.", "input": "Good morning."}])
    roots = prepare_roots(ds, EvolInstructConfig(instruction_column="task"))
    assert (
        roots[0]["instruction"] == "Translate to French.\n\nGood morning." and roots[0]["id"] == "root-00000"
    )
    with pytest.raises(ValueError, match="task, input.*--instruction-column"):
        prepare_roots(ds, EvolInstructConfig())
    with pytest.raises(ValueError, match="Unknown operation"):
        EvolInstructConfig(operation_weights={"deepen": 1})


# ----------------------------------------------------------------------------- parsers
@pytest.mark.parametrize(
    "text, expected",
    [
        ("Rewritten instruction: Write a sonnet about the sea.", "Write a sonnet about the sea."),
        ('Rewritten instruction: "Write a sonnet."', "Write a sonnet."),
        ("Rewritten instruction: Rewritten instruction: Do X carefully.", "Do X carefully."),
        ("Rewritten instruction: Plan a trip.\n\nAnswer: Day 1 ...", "Plan a trip."),
        (
            "Rewritten instruction: Plan a trip\nwith two lines.\nExplanation: I added detail.",
            "Plan a trip\nwith two lines.",
        ),
        ("New instruction: **Name five rivers in Asia.**", "Name five rivers in Asia."),
    ],
)
def test_parse_evolved_instruction(text, expected):
    assert parse_evolved_instruction(text).instruction == expected


@pytest.mark.parametrize(
    "text", ["", "Rewritten instruction:", "Rewritten instruction:   \n\nAnswer: x", None]
)
def test_parse_evolved_instruction_errors(text):
    assert parse_evolved_instruction(text).error == "empty_output"


@pytest.mark.parametrize(
    "text, expected",
    [
        (" 7", 7.0),
        ("7.5", 7.5),
        ("7,5", 7.5),
        ("Score: 8/10", 8.0),
        ("4 out of 5", 8.0),
        (" 11", None),
        ("-3", None),
        ("ten", None),
        ("", None),
        ("3/0", None),
    ],
)
def test_parse_score(text, expected):
    assert parse_score(text) == expected


def test_combine_verdict_names_what_did_not_parse():
    verdict = combine_verdict({"coherent": " Yes", "solvable": " maybe", "score": " 9"})
    assert (verdict.coherent, verdict.solvable, verdict.score, verdict.parsed) == (True, None, 9.0, False)
    assert verdict.error == "unparsable:solvable"


def test_round_log_names_next_parents_only_when_a_round_follows(caplog):
    caplog.set_level(logging.INFO, logger="hf_synth")
    _run(EvolInstructConfig(rounds=2, operation_weights={"deepening": 1}), evolver(grow))
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Evol round")]
    assert "parents next round" in lines[0] and "round 1 of 2" in lines[0]
    assert "round 2 of 2" in lines[-1] and "parents next round" not in lines[-1]
