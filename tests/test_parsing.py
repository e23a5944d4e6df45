import pytest

from hf_synth.self_instruct.parsing import (
    looks_like_classification,
    parse_instance,
    parse_instruction_list,
    parse_yes_no,
)

# Replies the embedded 135M teacher really produced (prefill "7." prepended, as the pipeline does).
CONTINUED_LIST = """7. Write a poem about a magical creature.
8. Produce a product that has no ingredients.
9. Build a miniature city using a computer.

When using this list of tasks as instructions, ensure that they are clear, concise, and user-friendly."""

INLINE_DOUBLE_NUMBERS = (
    '1. 1. Effective Communication: "To assist, I provide a variety of services. '
    "2. 2. Active Listening: I'm here to listen. 3. 3. Kindness: I am dedicated to caring."
)


def test_continued_numbered_list_drops_closing_commentary():
    parsed = parse_instruction_list(CONTINUED_LIST)
    assert parsed.error is None
    assert parsed.items == [
        "Write a poem about a magical creature.",
        "Produce a product that has no ingredients.",
        "Build a miniature city using a computer.",
    ]


def test_preamble_lines_are_not_instructions():
    text = "Here are five new tasks:\n\n1. Plan a picnic.\n2. Name a famous bridge.\nI hope this helps!"
    # "I hope this helps!" directly follows item 2 without a blank line, so it continues item 2:
    assert parse_instruction_list(text).items[0] == "Plan a picnic."
    text = "Here are five new tasks:\n\n1. Plan a picnic.\n2. Name a famous bridge.\n\nI hope this helps!"
    assert parse_instruction_list(text).items == ["Plan a picnic.", "Name a famous bridge."]


def test_text_without_list_markers_yields_nothing():
    text = "Sure! Tasks are things people do.\nThey can be hard or easy.\nMany people like tasks."
    parsed = parse_instruction_list(text)
    assert parsed.items == [] and parsed.error == "no_list_items"


def test_inline_numbers_split_only_on_the_next_number():
    parsed = parse_instruction_list(INLINE_DOUBLE_NUMBERS)
    assert len(parsed.items) == 3
    assert parse_instruction_list("7. Convert 3. 5 kilograms to pounds.").items == [
        "Convert 3. 5 kilograms to pounds."
    ]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("**9.** Explain photosynthesis simply.", ["Explain photosynthesis simply."]),
        (
            "Task 9: Describe a rainbow.\nTask 10: List three rivers.",
            ["Describe a rainbow.", "List three rivers."],
        ),
        ('9) "Suggest a gift for a teacher."', ["Suggest a gift for a teacher."]),
        (
            "- Write a limerick about cats.\n- Give a synonym for happy.",
            ["Write a limerick about cats.", "Give a synonym for happy."],
        ),
        ("9. Instruction: Summarize the article.", ["Summarize the article."]),
        (
            "9. Write a story that\nspans two lines.\n10. Next task.",
            ["Write a story that spans two lines.", "Next task."],
        ),
        ("9.\r\nCount the vowels.\r\n10. Reverse a string.", ["Count the vowels.", "Reverse a string."]),
    ],
)
def test_list_shapes(text, expected):
    assert parse_instruction_list(text).items == expected


def test_truncated_reply_drops_the_last_item():
    parsed = parse_instruction_list("7. Write a haiku.\n8. Describe the history of the Ro", truncated=True)
    assert parsed.items == ["Write a haiku."] and parsed.dropped_truncated


def test_max_items_caps_the_list():
    text = "\n".join(f"{i}. Task number {i}." for i in range(1, 20))
    assert len(parse_instruction_list(text, max_items=5).items) == 5


@pytest.mark.parametrize("text", ["", "   ", None, 42])
def test_empty_or_non_text_is_a_recorded_error(text):
    assert parse_instruction_list(text).error == "empty_output"


def test_input_first_instance():
    parsed = parse_instance("Input: The library opens at nine.\nOutput: La bibliothèque ouvre à neuf heures.")
    assert (parsed.input, parsed.output, parsed.error) == (
        "The library opens at nine.",
        "La bibliothèque ouvre à neuf heures.",
        None,
    )


@pytest.mark.parametrize("none", ["<none>", "None", "N/A", "<noinput>", "none."])
def test_no_input_markers_become_empty_input(none):
    parsed = parse_instance(f"Input: {none}\nOutput: Drink water, sleep, move.")
    assert parsed.input == "" and parsed.output == "Drink water, sleep, move."


def test_markdown_labels_and_multiline_output():
    parsed = parse_instance("**Input:** 3, 1, 2\n**Output:**\n1, 2, 3\nSorted ascending.")
    assert parsed.input == "3, 1, 2" and parsed.output == "1, 2, 3\nSorted ascending."


def test_second_example_and_new_turns_are_cut_off():
    text = (
        "Input: Two hours wasted.\nOutput: Negative\n\nUser: How to make a light show\n"
        "Input: Another one\nOutput: Positive"
    )
    parsed = parse_instance(text)
    assert parsed.output == "Negative"
    parsed = parse_instance("Input: a\nOutput: b\nInput: c\nOutput: d")
    assert (parsed.input, parsed.output) == ("a", "b")


def test_missing_output_is_an_error_not_a_guess():
    assert parse_instance("Input: The answer is 42 because of reasons.").error == "missing_output"
    assert parse_instance("Input: x\nOutput:   ").error == "empty_output"


def test_output_first_instance():
    parsed = parse_instance("Class label: Negative\nInput: The plot made no sense.", output_first=True)
    assert (parsed.output, parsed.input) == ("Negative", "The plot made no sense.")
    assert parse_instance("Class label: Positive", output_first=True).error == "missing_input"
    assert parse_instance("Input: something", output_first=True).error == "missing_label"


@pytest.mark.parametrize(
    "text, expected",
    [
        (" Yes", True),
        (" No.", False),
        ("yes, it is", True),
        ("True", True),
        ("[Yes]", True),
        ("**no**", False),
        (" Yes or No", None),
        (" Yes/No", None),
        (" The answer could be yes", None),
        (" maybe", None),
        ("", None),
        (None, None),
    ],
)
def test_one_yes_no_reader_for_every_step(text, expected):
    """Self-Instruct's task type, Evol-Instruct's judge, the paraphrase check and the response judge read
    verdicts with the same function (hf_synth.answers)."""
    from hf_synth.answers import split_yes_no
    from hf_synth.evol_instruct import parsing as evol_parsing
    from hf_synth.filters.judge import parse_adherence

    assert parse_yes_no(text) is expected
    assert evol_parsing.parse_yes_no is parse_yes_no
    assert parse_adherence(text or "")[0] is split_yes_no(text or "")[0] is expected


def test_classification_heuristic_on_the_fixture_seed_tasks(real_seed_rows):
    """60 hand-labelled tasks, 14 of them classification (0.92 on the 175 Self-Instruct seeds:
    bench/check_real_data.py)."""
    predictions = [looks_like_classification(r["instruction"]) for r in real_seed_rows]
    gold = [r["is_classification"] for r in real_seed_rows]
    accuracy = sum(p == g for p, g in zip(predictions, gold, strict=True)) / len(gold)
    assert accuracy >= 0.9  # measured 0.95; always-"no" would score 0.77
    assert sum(p and g for p, g in zip(predictions, gold, strict=True)) >= 10  # measured 11 of 14
