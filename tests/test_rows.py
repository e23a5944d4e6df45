"""Row formatting has one home (hf_synth.rows): the user turn of training rows, evaluation prompts and the
learnability filter's prompts are all built by ``user_content``."""

from __future__ import annotations

import pytest
from datasets import Dataset

from hf_synth.filters import learnability_filter
from hf_synth.refine.refine import eval_prompt
from hf_synth.rows import add_messages, chat_messages, engine_map, require_columns, row_ids, user_content

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


class _Wide:
    """An engine that decodes ``max_concurrency`` prompts at once; ``concurrent_calls`` as a server client."""

    def __init__(self, width: int, concurrent_calls: bool = False) -> None:
        self.max_concurrency, self.concurrent_calls = width, concurrent_calls


@pytest.mark.parametrize("concurrent", [False, True])
def test_a_step_map_sends_batches_at_least_as_wide_as_its_engine(concurrent):
    seen: list[int] = []

    def call(batch):
        seen.append(len(batch["x"]))
        return {"y": [v * 2 for v in batch["x"]]}

    dataset = Dataset.from_dict({"x": list(range(12))})
    out = engine_map(dataset, call, None, "step", _Wide(5, concurrent), 2, "Mapping")
    assert out["y"] == [v * 2 for v in range(12)]
    assert sorted(seen) == [2, 5, 5]  # max(checkpoint_every=2, width=5) rows a call, in order either way
    seen.clear()
    engine_map(dataset, call, None, "step", _Wide(1), 4, "Mapping")
    assert seen == [4, 4, 4]  # a narrow engine: checkpoint_every decides


def test_derived_rows_point_to_unique_ids_or_to_row_numbers():
    assert row_ids(Dataset.from_dict({"id": ["a", "b"], "x": [1, 2]})) == ["a", "b"]
    assert row_ids(Dataset.from_dict({"id": ["a", "a"], "x": [1, 2]})) == ["row-00000", "row-00001"]
    assert row_ids(Dataset.from_dict({"x": [1]})) == ["row-00000"]
    with pytest.raises(ValueError, match=r"No 'output' column \(columns: instruction\)"):
        require_columns(Dataset.from_dict({"instruction": ["q"]}), ("instruction", "output"))


def test_map_in_threads_puts_back_stdout_a_thread_left_swapped():
    """datasets fingerprints map functions with dill, which swaps sys.stdout for a buffer and puts back
    what it found; two threads interleaved as below leave one thread's buffer as sys.stdout for good (every
    later print lost). map_in_threads puts the streams back once its threads are done."""
    import io
    import sys
    import threading

    from hf_synth.checkpoint import map_in_threads

    original = sys.stdout
    a_swapped, b_swapped, a_restored = threading.Event(), threading.Event(), threading.Event()

    def capture(name: str) -> str:  # dill.temp.capture's swap, in the order that loses the stream
        if name == "a":
            found = sys.stdout
            sys.stdout = io.StringIO()
            a_swapped.set()
            assert b_swapped.wait(10)
            sys.stdout = found
            a_restored.set()
        else:
            assert a_swapped.wait(10)
            found = sys.stdout  # a's buffer
            sys.stdout = io.StringIO()
            b_swapped.set()
            assert a_restored.wait(10)
            sys.stdout = found
        return name

    try:
        assert map_in_threads(capture, ["a", "b"], workers=2) == ["a", "b"]
        assert sys.stdout is original
    finally:
        sys.stdout = original
