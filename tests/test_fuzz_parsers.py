"""Property tests: every parser of model output takes any string and returns a value or a recorded
failure, never an exception. Run with ``-s`` to see how many examples hypothesis tried."""

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hf_synth.answers import split_yes_no
from hf_synth.evol_instruct.parsing import (
    combine_verdict,
    parse_evolved_instruction,
    parse_score,
)
from hf_synth.filters.judge import parse_adherence, parse_rating
from hf_synth.self_instruct.parsing import (
    looks_like_classification,
    parse_instance,
    parse_instruction_list,
    parse_yes_no,
)

FRAGMENTS = [
    "1.",
    "2)",
    "**3.**",
    "Task 4:",
    "- ",
    "* ",
    "Input:",
    "Output:",
    "Class label:",
    "Answer:",
    "User:",
    "Rewritten instruction:",
    "Score:",
    "Yes",
    "No",
    "Yes or No",
    "7.5",
    "8/10",
    "\n",
    "\n\n",
    "\r\n",
    "{{",
    "}}",
    "{%",
    "%}",
    "**",
    '"',
    "`",
    "é",
    "中文",
    "مرحبا",
    "\x00",
    "\ufeff",
    "\U0001f600",
]
model_text = st.one_of(
    st.text(),
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=20)), max_size=60).map("".join),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
    st.integers(1, 30_000).map(lambda n: "1. " + "word " * n),
)
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(model_text, st.booleans(), st.one_of(st.none(), st.integers(1, 10)))
def test_instruction_lists(text, truncated, max_items):
    parsed = parse_instruction_list(text, truncated=truncated, max_items=max_items)
    assert (parsed.error is None) == bool(parsed.items)
    assert all(isinstance(i, str) and i.strip() for i in parsed.items)
    if max_items is not None:
        assert len(parsed.items) <= max_items


@SETTINGS
@given(model_text, st.booleans())
def test_instances(text, output_first):
    parsed = parse_instance(text, output_first=output_first)
    assert parsed.error is not None or parsed.output.strip()
    assert isinstance(parsed.input, str)


@SETTINGS
@given(model_text)
def test_yes_no_score_and_labels(text):
    assert parse_yes_no(text) in (True, False, None)
    verdict, rest = split_yes_no(text)
    assert verdict in (True, False, None) and isinstance(rest, str)
    assert isinstance(looks_like_classification(text), bool)
    score = parse_score(text)
    assert score is None or (0 <= score <= 10 and math.isfinite(score))
    rating, reason = parse_rating(text)
    assert rating is None or 1 <= rating <= 5
    adheres, why = parse_adherence(text)
    assert adheres in (True, False, None) and isinstance(why, str) and isinstance(reason, str)


@SETTINGS
@given(model_text)
def test_evolved_instructions(text):
    parsed = parse_evolved_instruction(text)
    assert (parsed.error is None) == bool(parsed.instruction)


@SETTINGS
@given(st.dictionaries(st.sampled_from(["coherent", "solvable", "more_complex", "score"]), model_text))
def test_judge_verdicts(answers):
    verdict = combine_verdict(answers)
    assert verdict.parsed == (bool(answers) and not verdict.error)
