"""Row formatting has one home (hf_synth.rows): the user turn of training rows, evaluation prompts and the
learnability filter's prompts are all built by ``user_content``."""

from __future__ import annotations

from datasets import Dataset

from hf_synth.filters import learnability_filter
from hf_synth.refine.refine import eval_prompt
from hf_synth.rows import add_messages, chat_messages, user_content

from .conftest import ScriptedEngine

INPUTS = ["", "   ", "Paris, France", "  spaced input \n"]


def test_the_user_turn_is_the_instruction_then_its_input_after_a_blank_line():
    assert user_content("Name a city.", "") == "Name a city."
    assert user_content("Name a city.", "In France.") == "Name a city.\n\nIn France."
    # training rows keep an input of white space as it is; prompts asked at evaluation drop it
    assert user_content("Name a city.", "  ") == "Name a city.\n\n  "
    assert user_content("Name a city.", "  ", skip_blank_input=True) == "Name a city."
    assert user_content("Name a city.", " x ", skip_blank_input=True) == "Name a city.\n\n x "


def test_training_rows_get_messages_built_from_the_user_turn():
    rows = [{"instruction": f"Task {i}.", "input": x, "output": f"Answer {i}."} for i, x in enumerate(INPUTS)]
    with_messages = add_messages(Dataset.from_list(rows))
    for row, got in zip(rows, with_messages["messages"], strict=True):
        assert got == chat_messages(row["instruction"], row["input"], row["output"])
        assert got == [
            {"role": "user", "content": user_content(row["instruction"], row["input"])},
            {"role": "assistant", "content": row["output"]},
        ]


def test_refine_and_learnability_ask_the_same_prompt_for_a_task():
    rows = [{"instruction": f"Task {i}.", "input": x, "output": f"Answer {i}."} for i, x in enumerate(INPUTS)]
    expected = [user_content(r["instruction"], r["input"], skip_blank_input=True) for r in rows]
    assert [eval_prompt(r) for r in rows] == expected
    student = ScriptedEngine(lambda text: "An answer.", model_id="scripted-student")
    learnability_filter(Dataset.from_list(rows), student, keep=1)
    assert student.calls == [expected]
