"""Learnability-driven selection with scripted students and teachers: exactly the rows the student fails."""

from __future__ import annotations

import pytest
from datasets import Dataset

from hf_synth.filters import learnability_filter, resolve_filters, split_filtered

from .conftest import ScriptedEngine

ROWS = [
    {"instruction": f"Task {i}: name the capital of country {i}.", "input": "", "output": f"City number {i}."}
    for i in range(10)
]
FAILS = {2, 5, 7}  # the rows the scripted student gets wrong


def _task(text: str) -> int:
    return int(text.split("Task ")[1].split(":")[0])


def _student(fails=FAILS):
    def reply(text):
        i = _task(text)
        return "I do not know, sorry about that." if i in fails else f"City number {i}."

    return ScriptedEngine(reply, model_id="scripted-student")


def test_a_student_that_fails_on_known_rows_has_exactly_those_kept():
    data = Dataset.from_list(ROWS)
    scored = learnability_filter(data, _student(), keep=len(FAILS))
    kept, dropped = split_filtered(scored)
    assert sorted(_task(t) for t in kept["instruction"]) == sorted(FAILS)
    assert set(r for row in dropped["filter_reasons"] for r in row) == {"student_already_answers"}
    gaps = {_task(r["instruction"]): r["scores"]["learnability_gap"] for r in scored}
    assert all(gaps[i] == 1.0 for i in FAILS) and all(gaps[i] == 0.0 for i in set(range(10)) - FAILS)
    assert all(r["scores"]["learnability_teacher_quality"] == 1.0 for r in scored)


def test_keep_fraction_and_a_teacher_engine_with_a_quality_floor():
    data = Dataset.from_list(ROWS)

    def teacher_reply(text):
        i = _task(text)
        # the teacher refuses on row 5 (junk must not win) and answers the rest like the reference
        return "As an AI language model, I cannot help with that." if i == 5 else f"City number {i}."

    teacher = ScriptedEngine(teacher_reply, model_id="scripted-teacher")
    scored = learnability_filter(data, _student(), teacher, keep_fraction=0.25)
    kept, dropped = split_filtered(scored)
    # 9 rows pass the floor; ceil(0.25 * 9) = 3 kept: the two failed rows above the floor, then row 0
    # (ties at gap 0 go to earlier rows)
    assert sorted(_task(t) for t in kept["instruction"]) == [0, 2, 7]
    by_task = {_task(r["instruction"]): r for r in scored}
    assert by_task[5]["filter_reasons"] == ["teacher_below_quality_floor"]
    assert by_task[5]["scores"]["learnability_teacher_quality"] == 0.0
    assert by_task[3]["scores"]["learnability_teacher_quality"] == 1.0  # same as the reference


def test_partial_overlap_ranks_by_gap():
    data = Dataset.from_list(ROWS[:3])

    def reply(text):
        return {0: "City number 0.", 1: "City number wrong.", 2: "nothing at all"}[_task(text)]

    scored = learnability_filter(data, ScriptedEngine(reply), keep=2)
    gaps = [s["learnability_gap"] for s in scored["scores"]]
    assert gaps[0] == 0.0 and 0 < gaps[1] < 1 and gaps[2] == 1.0
    assert [bool(r) for r in scored["filter_reasons"]] == [True, False, False]


def test_bad_settings_name_the_fix(tmp_path):
    data = Dataset.from_list(ROWS).remove_columns(["output"])
    with pytest.raises(ValueError, match="teacher engine or an 'output' column"):
        learnability_filter(data, _student())
    with pytest.raises(ValueError, match="keep_fraction"):
        learnability_filter(Dataset.from_list(ROWS), _student(), keep_fraction=2)
    student = str(tmp_path)  # a folder (a Hub id not in the cache is refused offline, as test_edges checks)
    [(name, _, params)] = resolve_filters([{"name": "learnability", "student_model": student, "keep": 3}])
    assert name == "learnability" and params == {"student_model": student, "keep": 3}
    with pytest.raises(FileNotFoundError, match="'not/cached'"):
        resolve_filters([{"name": "learnability", "teacher_model": "not/cached"}])


def test_without_a_teacher_a_refusing_or_empty_output_is_below_the_floor():
    rows = [dict(r) for r in ROWS]
    rows[2]["output"] = "As an AI language model, I cannot answer that."
    rows[7]["output"] = ""
    scored = learnability_filter(Dataset.from_list(rows), _student(), keep=10)
    reasons = {_task(r["instruction"]): r["filter_reasons"] for r in scored}
    assert reasons[2] == reasons[7] == ["teacher_below_quality_floor"]
    assert all(reasons[i] == [] for i in set(range(10)) - {2, 7})
