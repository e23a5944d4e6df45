import hashlib
import itertools
import json

import pytest
from datasets import Dataset

from hf_synth import CheckpointMismatchError, SelfInstruct, SelfInstructConfig
from hf_synth.self_instruct import OUTPUT_COLUMNS, prepare_seed_pool

from .conftest import ScriptedEngine, task_of, which_template

SEEDS = [
    {
        "instruction": "Give three tips for staying healthy.",
        "input": "",
        "output": "Sleep, eat well, move.",
        "is_classification": False,
    },
    {
        "instruction": "Is the review positive or negative?",
        "input": "Great phone!",
        "output": "Positive",
        "is_classification": True,
    },
    {
        "instruction": "Translate the sentence into French.",
        "input": "I like tea.",
        "output": "J'aime le thé.",
    },
    {
        "instruction": "Summarize the paragraph in one sentence.",
        "input": "Bees pollinate crops.",
        "output": "Bees matter.",
    },
    {"instruction": "Suggest a name for a vegan bakery.", "input": "", "output": "Crumb Garden"},
    {"instruction": "Write a haiku about autumn rain.", "input": "", "output": "Rain on red leaves"},
    {"instruction": "Convert 100 degrees Fahrenheit to Celsius.", "input": "", "output": "37.8 C"},
]

GOOD = [
    "Explain how vaccines train the immune system.",
    "List five uses for baking soda around the house.",
    "Compose a limerick about a forgetful wizard.",
    "Outline a weekly study plan for learning Spanish.",
    "Compare electric cars and hybrids for city driving.",
    "Recommend three board games for a family night.",
    "Describe what happens during a solar eclipse.",
    "Calculate the area of a circle with radius four.",
    "Propose a slogan for a recycling campaign at school.",
    "Identify the main causes of the French Revolution.",
    "Draft an apology email for missing a meeting.",
    "Give advice for a first job interview in retail.",
    "Rewrite this paragraph so a child can understand it.",
    "Name four mammals that live in the ocean.",
    "Invent a riddle whose answer is a shadow.",
    "Estimate how many minutes are in a leap year.",
]
BAD = [
    "Draw a picture of a cat sleeping on a sofa.",  # blocked keyword
    "42 is the answer to which famous question?",  # bad start
    "Give three tips for staying healthy.",  # copy of a seed -> ROUGE
    "Hi there",  # too short
    "Classify the sentiment of this tweet as positive or negative.",  # output-first, kept
    "Explain the privacy rules for medical records.",  # refusal output
    "Echo this exact instruction back to me please.",  # output copies the instruction
    "Return something without the expected format labels.",  # malformed instance
]


def make_reply(good=GOOD, bad=BAD):
    fresh = itertools.chain(
        bad, good, (f"Write a unique story number {i} about topic {i * 7919}." for i in itertools.count())
    )

    def reply(text: str) -> str:
        kind = which_template(text)
        if kind == "instructions":
            items = [next(fresh) for _ in range(4)]
            return (
                " "
                + "\n".join(f"{i}. {item}" if i else item for i, item in enumerate(items, start=0)).replace(
                    "0. ", "", 1
                )
                + "\n\nThese tasks are all different."
            )
        task = task_of(text)
        if kind == "classify":
            return " Yes" if "sentiment" in task else " No"
        if kind == "output_first":
            return " Positive\nInput: I loved every minute of it."
        if "privacy" in task:
            return " <none>\nOutput: As an AI language model, I cannot discuss that."
        if "Echo" in task:
            return f" <none>\nOutput: {task}"
        if "format labels" in task:
            return " Here is something unstructured."
        return f" <none>\nOutput: A helpful answer to: {task.lower()}"

    return reply


def stateless_reply(text: str) -> str:
    """Replies that depend only on the prompt, as a real model with a fixed seed would."""
    kind = which_template(text)
    if kind != "instructions":
        return make_reply(good=[], bad=[])(text)
    digest = hashlib.sha256(text.encode()).digest()
    verbs = ["Explain", "Summarize", "Critique", "Invent", "Translate", "Plan", "Debug", "Rank", "Compare"]
    topics = ["volcanoes", "jazz", "tax law", "origami", "sourdough", "comets", "chess", "tides", "bonsai"]
    people = ["a child", "a chef", "an engineer", "a tourist", "a nurse", "a poet", "a pilot", "a farmer"]
    items = [
        f"{verbs[digest[i] % 9]} {topics[digest[i + 3] % 9]} for {people[digest[i + 6] % 8]} in "
        f"{digest[i + 9]} words."
        for i in range(3)
    ]
    return " " + "\n".join(f"{n}. {item}" if n else item for n, item in enumerate(items))


def _run(config, engine=None, **kwargs):
    engine = engine or ScriptedEngine(make_reply())
    result = SelfInstruct(engine, config, **kwargs).run(Dataset.from_list(SEEDS))
    return engine, result


def test_end_to_end_rows_columns_and_provenance():
    config = SelfInstructConfig(
        num_instructions=10, requests_per_round=3, num_seed_examples=4, num_machine_examples=2, seed=3
    )
    engine, result = _run(config)
    ds = result.dataset
    assert len(ds) == 10
    assert ds.column_names == OUTPUT_COLUMNS
    for row in ds:
        assert row["source"] == "self-instruct" and row["model"] == "scripted-teacher"
        assert row["messages"][0] == {
            "role": "user",
            "content": row["instruction"] + ("\n\n" + row["input"] if row["input"] else ""),
        }
        assert row["messages"][1] == {"role": "assistant", "content": row["output"]}
        assert len(row["parent_ids"]) >= 4
        assert json.loads(row["generation_params"])["instance"]["temperature"] == 0.7
        assert row["output"].strip()
    cls = [r for r in ds if r["instruction"].startswith("Classify the sentiment")]
    assert cls and cls[0]["generation_order"] == "output-first" and cls[0]["output"] == "Positive"
    assert cls[0]["input"] == "I loved every minute of it."


def test_every_filter_reason_is_counted_and_rows_are_kept_for_inspection():
    config = SelfInstructConfig(num_instructions=100, max_rounds=1, requests_per_round=4, seed=3)
    _, result = _run(config)
    dropped = result.summary.dropped
    assert dropped["blocked_keyword:picture"] == 1
    assert dropped["bad_start"] == 1
    assert dropped["rouge_l_too_similar"] == 1
    assert dropped["instruction_too_short"] == 1
    assert dropped["refusal"] == 1
    assert dropped["output_copies_instruction"] == 1
    assert dropped["malformed:missing_output"] == 1
    assert result.summary.generated == 16 and result.summary.kept == 9 and result.summary.rejected == 7
    rejected = {r["instruction"]: r for r in result.rejected}
    assert rejected["Give three tips for staying healthy."]["scores"]["rouge_l_max"] == 1.0
    assert rejected["Give three tips for staying healthy."]["scores"]["rouge_l_nearest"] == "seed-00000"
    assert rejected["Explain the privacy rules for medical records."]["stage"] == "instance"
    assert "Draw a picture of a cat sleeping on a sofa." not in result.dataset["instruction"]


def test_later_rounds_mix_machine_instructions_into_the_few_shot_prompts():
    config = SelfInstructConfig(
        num_instructions=12, requests_per_round=2, num_seed_examples=3, num_machine_examples=2, seed=5
    )
    engine, result = _run(config)
    assert result.summary.rounds >= 2
    later = [r for r in result.dataset if r["round"] >= 2]
    assert later
    for row in later:
        available = sum(r["round"] < row["round"] for r in result.dataset)
        assert sum(p.startswith("si-") for p in row["parent_ids"]) == min(2, available)
    assert all(
        not any(p.startswith("si-") for p in r["parent_ids"]) for r in result.dataset if r["round"] == 1
    )
    # machine instructions shown as examples appear verbatim in the prompts of later rounds
    first_kept = result.dataset[0]["instruction"]
    instruction_prompts = [t for call in engine.calls for t in call if which_template(t) == "instructions"]
    assert not any(first_kept in t for t in instruction_prompts[:2])  # round 0 shows seeds only
    assert any(first_kept in t for t in instruction_prompts[2:])


def test_beyond_target_rows_are_rejected_not_lost():
    config = SelfInstructConfig(num_instructions=3, requests_per_round=4, seed=3)
    _, result = _run(config)
    assert len(result.dataset) == 3
    extra = [r for r in result.rejected if r["filter_reasons"] == ["beyond_target"]]
    assert len(extra) == result.summary.dropped["beyond_target"] > 0
    assert result.summary.kept == 3


def test_max_rounds_stops_a_run_that_keeps_nothing():
    # The pipeline prefills the next list number, so an empty continuation is an empty item.
    engine = ScriptedEngine(lambda text: "" if which_template(text) == "instructions" else "")
    _, result = _run(
        SelfInstructConfig(num_instructions=5, max_rounds=3, requests_per_round=2), engine=engine
    )
    assert len(result.dataset) == 0 and result.summary.rounds == 3
    assert result.summary.requests_unparsable == result.summary.requests
    assert result.summary.dropped["malformed:no_list_items"] == result.summary.requests
    assert set(result.rejected["stage"]) == {"request"} and len(result.rejected) == result.summary.requests
    assert all(raw.startswith("8.") or raw[0].isdigit() for raw in result.rejected["raw_completion"])


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "\x00\x01\x02",
        "{{{{",
        "1.",
        "Input:\nOutput:",
        "ü" * 5000,
        "1. \n2. \n3.",
        "Output: Output: Output:",
    ],
)
def test_malformed_model_output_never_crashes(garbage):
    engine = ScriptedEngine(lambda text: garbage)
    _, result = _run(
        SelfInstructConfig(num_instructions=2, max_rounds=2, requests_per_round=2), engine=engine
    )
    summary = result.summary
    assert summary.rounds == 2
    assert summary.generated + summary.requests_unparsable == summary.kept + summary.rejected
    assert len(result.rejected) == summary.rejected


def test_llm_task_type_with_unparsable_verdict_falls_back_and_is_counted():
    base = make_reply()

    def reply(text):
        if which_template(text) == "classify":
            return " Yes" if "sentiment" in task_of(text) else " hmm"
        return base(text)

    config = SelfInstructConfig(
        num_instructions=100, max_rounds=1, requests_per_round=4, task_type_method="llm"
    )
    _, result = _run(config, engine=ScriptedEngine(reply))
    rows = {r["instruction"]: r for r in result.dataset}
    assert rows["Classify the sentiment of this tweet as positive or negative."]["task_type_source"] == "llm"
    assert result.summary.task_type_fallbacks == result.summary.generated - 4 - 1  # 4 dropped early, 1 llm
    assert {r["task_type_source"] for r in result.dataset} == {"llm", "heuristic_fallback"}


def test_copies_of_the_demonstration_are_dropped():
    base = make_reply()

    copied = []

    def reply(text):
        if which_template(text) == "input_first":
            demo_output = text.split("Here is how it looks")[1].split("Output: ")[1].split("\n")[0]
            if len(demo_output.split()) >= 3:  # shorter outputs are too short to call a copy
                copied.append(task_of(text))
                return f" <none>\nOutput: {demo_output}"
        return base(text)

    config = SelfInstructConfig(num_instructions=100, max_rounds=1, requests_per_round=4, seed=3)
    _, result = _run(config, engine=ScriptedEngine(reply))
    rejected = {r["instruction"]: r for r in result.rejected}
    assert copied and all(rejected[t]["filter_reasons"] == ["copies_demonstration"] for t in copied)
    assert all(r["demonstration_id"].startswith("seed-") for r in result.dataset)


def test_include_seeds_prepends_the_seed_rows():
    config = SelfInstructConfig(num_instructions=2, requests_per_round=2, include_seeds=True, seed=3)
    _, result = _run(config)
    assert result.dataset["source"][: len(SEEDS)] == ["seed"] * len(SEEDS)
    assert len(result.dataset) == len(SEEDS) + 2


# ----------------------------------------------------------------------------- checkpoints
def test_rerun_reuses_finished_rounds_without_calling_the_model(tmp_path):
    config = SelfInstructConfig(num_instructions=8, requests_per_round=2, seed=11, checkpoint_every=2)
    _, first = _run(config, checkpoint_dir=tmp_path)
    idle = ScriptedEngine(lambda text: pytest.fail("the model was called on a finished run"))
    _, second = _run(config, engine=idle, checkpoint_dir=tmp_path)
    assert second.dataset.to_list() == first.dataset.to_list()
    assert second.summary.to_dict()["dropped"] == first.summary.to_dict()["dropped"]


def test_crash_mid_step_then_resume_gives_the_uninterrupted_result(tmp_path):
    config = SelfInstructConfig(num_instructions=10, requests_per_round=4, seed=11, checkpoint_every=2)
    _, reference = _run(config, engine=ScriptedEngine(stateless_reply))
    crashing = ScriptedEngine(stateless_reply, fail_after=5)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _run(config, engine=crashing, checkpoint_dir=tmp_path)
    _, resumed = _run(config, engine=ScriptedEngine(stateless_reply), checkpoint_dir=tmp_path)
    assert resumed.summary.reused_chunks >= 2
    assert resumed.dataset.to_list() == reference.dataset.to_list()
    assert len(set(resumed.dataset["id"])) == len(resumed.dataset)


def test_changed_config_is_refused_unless_overwrite(tmp_path):
    _run(SelfInstructConfig(num_instructions=2, requests_per_round=2, seed=1), checkpoint_dir=tmp_path)
    changed = SelfInstructConfig(num_instructions=2, requests_per_round=2, seed=2)
    with pytest.raises(CheckpointMismatchError, match="seed: 1 → 2.*overwrite=True"):
        _run(changed, checkpoint_dir=tmp_path)
    _, result = _run(changed, checkpoint_dir=tmp_path, overwrite=True)
    assert len(result.dataset) == 2


def test_a_larger_target_extends_an_earlier_run(tmp_path):
    _, small = _run(
        SelfInstructConfig(num_instructions=3, requests_per_round=2, seed=4), checkpoint_dir=tmp_path
    )
    _, large = _run(
        SelfInstructConfig(num_instructions=12, requests_per_round=2, seed=4), checkpoint_dir=tmp_path
    )
    assert large.dataset["id"][:3] == small.dataset["id"]
    assert len(large.dataset) == 12


# ----------------------------------------------------------------------------- seed pool
def test_missing_instruction_column_names_the_columns_and_the_option():
    ds = Dataset.from_list([{"prompt": "Do X.", "answer": "Y"}])
    with pytest.raises(ValueError) as info:
        prepare_seed_pool(ds, SelfInstructConfig())
    message = str(info.value)
    assert "'instruction'" in message and "prompt, answer" in message and "instruction_column" in message


def test_seed_pool_maps_columns_and_reads_instances(real_seed_rows):
    pool = prepare_seed_pool(Dataset.from_list(real_seed_rows[:5]), SelfInstructConfig())
    assert pool["id"] == [r["id"] for r in real_seed_rows[:5]]
    assert pool["output"][0] == real_seed_rows[0]["instances"][0]["output"]
    custom = Dataset.from_list([{"q": "Name a river.", "a": "Nile"}, {"q": "  ", "a": "dropped"}])
    pool = prepare_seed_pool(custom, SelfInstructConfig(instruction_column="q", output_column="a"))
    assert pool.to_list() == [
        {
            "id": "seed-00000",
            "instruction": "Name a river.",
            "input": "",
            "output": "Nile",
            "is_classification": None,
            "source": "seed",
        }
    ]


def test_empty_and_non_text_seeds_are_clear_errors():
    with pytest.raises(ValueError, match="empty"):
        prepare_seed_pool(Dataset.from_dict({"instruction": []}), SelfInstructConfig())
    with pytest.raises(TypeError, match="row 0"):
        prepare_seed_pool(Dataset.from_list([{"instruction": ["a", "b"]}]), SelfInstructConfig())


def test_empty_and_null_seed_rows_are_skipped_with_a_warning(caplog):
    ds = Dataset.from_list([{"instruction": "Name a river."}, {"instruction": None}, {"instruction": "  "}])
    pool = prepare_seed_pool(ds, SelfInstructConfig())
    assert pool["instruction"] == ["Name a river."]
    assert "Skipped 2 seed row(s) with an empty or null 'instruction' (rows 1, 2)" in caplog.text


BROKEN = {
    "Describe the harbour at dawn in detail.": " <none>\nOutput: The harbour \ufffd glows at dawn.",
    "Summarise the town council minutes.": " <none>\nOutput: The council met (and voted on the budget",
    "Write a note to the night shift.": " <none>\nOutput: Hello\x07 night shift, all is well.",
    "Tell a story about the old lighthouse keeper.": " <none>\nOutput: " + "word " * 300,
    "Reply to the angry customer email.": " <none>\nOutput: Shut up, you stupid idiot, fuck off.",
}


def _broken_reply():
    teacher = make_reply(good=list(BROKEN), bad=[])

    def reply(text: str) -> str:
        if which_template(text) != "instructions" and task_of(text) in BROKEN:
            return BROKEN[task_of(text)]
        return teacher(text)

    return reply


@pytest.mark.parametrize("filtering", [True, False])
def test_broken_and_toxic_text_is_rejected_with_its_reason(filtering):
    config = SelfInstructConfig(
        num_instructions=20,
        max_rounds=1,
        requests_per_round=2,
        seed=3,
        filter_broken_text=filtering,
        filter_toxicity=filtering,
    )
    result = SelfInstruct(ScriptedEngine(_broken_reply()), config).run(Dataset.from_list(SEEDS))
    reasons = {r["instruction"]: r["filter_reasons"] for r in result.rejected}
    expected = {
        "Describe the harbour at dawn in detail.": "output_replacement_character",
        "Summarise the town council minutes.": "output_unbalanced",
        "Write a note to the night shift.": "output_control_characters",
        "Tell a story about the old lighthouse keeper.": "instance_truncated",
        "Reply to the angry customer email.": "toxic:output",
    }
    if filtering:
        for instruction, reason in expected.items():
            assert reason in reasons[instruction], (instruction, reasons.get(instruction))
        assert not set(expected) & set(result.dataset["instruction"])
    else:
        assert set(expected) <= set(result.dataset["instruction"])
