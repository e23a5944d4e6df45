import json

import pytest
from datasets import Dataset

from hf_synth.cli import main
from hf_synth.curation import classify_skills, coverage_report, load_taxonomy
from hf_synth.prompts import render_messages

EXAMPLES = {  # our own instructions, two per default skill
    "open_qa": ["Who was the first person to walk on the moon?", "What is the capital of Australia?"],
    "explanation": [
        "Explain how vaccines work to a ten-year-old.",
        "Explain why leaves change colour in autumn.",
    ],
    "summarization": [
        "Summarize the following article in two sentences.",
        "Give me a short summary of this meeting transcript.",
    ],
    "creative_writing": ["Write a poem about autumn leaves.", "Write a short story about a lost robot."],
    "coding": ["Write a Python function that reverses a string.", "Fix the bug in this JavaScript code."],
    "math_reasoning": ["What is 15% of 240? Show your steps.", "Solve for x: 3x + 7 = 22."],
    "classification": ["Is this review positive or negative?", "Classify the email as spam or not spam."],
    "extraction": [
        "List all the dates mentioned in this paragraph.",
        "Extract the names of the people in the text.",
    ],
    "rewriting": ["Rewrite this sentence in a more formal tone.", "Correct the grammar in this paragraph."],
    "brainstorming": ["Give me ten ideas for a birthday party.", "Suggest names for a coffee shop."],
    "translation": ["Translate this sentence into Spanish.", "How do you say 'thank you' in Japanese?"],
    "advice_planning": [
        "Make a weekly workout plan for a beginner.",
        "How should I prepare for a job interview?",
    ],
}


@pytest.fixture(scope="module")
def classified():
    rows = [{"instruction": t, "gold": skill} for skill, texts in EXAMPLES.items() for t in texts]
    return classify_skills(Dataset.from_list(rows))


def test_default_taxonomy_classifies_clear_examples(classified):
    assert set(load_taxonomy()) == set(EXAMPLES)
    correct = sum(r["skill"] == r["gold"] for r in classified)
    assert correct >= 22  # of 24
    assert all(0 < r["scores"]["skill_confidence"] <= 1 for r in classified)


def test_coverage_report_counts_missing_and_under_covered(classified):
    subset = classified.filter(lambda r: r["gold"] in ("coding", "math_reasoning", "open_qa"))
    report = coverage_report(subset)
    assert report["rows"] == 6 and sum(r["count"] for r in report["skills"].values()) == 6
    predicted = set(subset["skill"])
    assert report["missing"] == [s for s in load_taxonomy() if s not in predicted]
    assert len(report["missing"]) >= 8 and set(report["missing"]) <= set(report["under_covered"])
    with pytest.raises(ValueError, match="classify_skills"):
        coverage_report(Dataset.from_list([{"instruction": "x"}]))


def test_user_taxonomy(tmp_path):
    path = tmp_path / "tax.yaml"
    path.write_text(
        "cooking: recipes, ingredients and how to cook food\nsports: sports, games, athletes and teams\n"
    )
    out = classify_skills(
        Dataset.from_list(
            [
                {"instruction": "How long should I boil an egg?"},
                {"instruction": "Who won the football world cup in 2014?"},
            ]
        ),
        taxonomy=load_taxonomy(path),
    )
    assert out["skill"] == ["cooking", "sports"]
    path.write_text("- just a list\n")
    with pytest.raises(ValueError, match="name: description"):
        load_taxonomy(path)


def test_focus_skills_steer_the_instruction_prompt():
    plain = render_messages(
        "self_instruct/generate_instructions", examples=["A."], num_new=3, focus_skills=[]
    )
    steered = render_messages(
        "self_instruct/generate_instructions",
        examples=["A."],
        num_new=3,
        focus_skills=["math reasoning", "coding"],
    )
    assert "too few tasks" not in plain[0]["content"]
    assert "make most new tasks one of them: math reasoning, coding." in steered[0]["content"]


def test_cli_report(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text(
        "\n".join(json.dumps({"instruction": t}) for t in EXAMPLES["coding"] + EXAMPLES["open_qa"])
    )
    assert main(["report", "--input", str(data), "--out", str(tmp_path / "r.json")]) == 0
    printed = capsys.readouterr().out
    assert "skill coverage" in printed and "--focus-skills" in printed
    report = json.loads((tmp_path / "r.json").read_text())
    assert sum(r["count"] for r in report["skills"].values()) == 4
    assert report["skills"]["open_qa"]["count"] >= 1 and len(report["missing"]) >= 8


def test_skill_classifier_on_held_out_instructions():
    """Fitted on hf-synth's examples, measured on a labelled set it never saw (targets of the issue:
    >= 85% overall, >= 70% per skill)."""
    from pathlib import Path

    from hf_synth.curation import default_skill_classifier, load_labelled
    from hf_synth.curation.skill_classifier import DEFAULT_EXAMPLES

    texts, labels = load_labelled(Path(__file__).parent / "data" / "skills_heldout.jsonl")
    assert not set(texts) & set(load_labelled(DEFAULT_EXAMPLES)[0])  # really held out
    report = default_skill_classifier().evaluate(texts, labels)
    assert report["accuracy"] >= 0.85, report
    assert min(report["per_skill"].values()) >= 0.70, report
    assert set(report["per_skill"]) == set(load_taxonomy())


def test_users_fit_their_own_classifier(tmp_path):
    from hf_synth.curation import SkillClassifier

    path = tmp_path / "mine.jsonl"
    rows = [
        ("Boil pasta for ten minutes.", "cooking"),
        ("How long do I roast a chicken?", "cooking"),
        ("Knead the dough and let it rise.", "cooking"),
        ("Who won the match last night?", "sports"),
        ("How many players are in a rugby team?", "sports"),
        ("Explain the offside rule.", "sports"),
    ]
    path.write_text("".join(json.dumps({"instruction": t, "skill": s}) + "\n" for t, s in rows))
    out = classify_skills(
        Dataset.from_list(
            [{"instruction": "What temperature bakes bread?"}, {"instruction": "Who is the best goalkeeper?"}]
        ),
        examples=path,
    )
    assert out["skill"] == ["cooking", "sports"]
    with pytest.raises(ValueError, match="fewer than 3"):
        SkillClassifier.fit(["a", "b", "c", "d"], ["x", "x", "x", "y"])
    path.write_text('{"instruction": "no label"}\n')
    with pytest.raises(ValueError, match="line 1"):
        classify_skills(Dataset.from_list([{"instruction": "x"}]), examples=path)


def test_the_report_says_what_labelled_the_skills(classified):
    from hf_synth.curation import skill_labeller

    assert coverage_report(classified)["labeller"].startswith("a logistic-regression classifier")
    assert skill_labeller() == (
        "a logistic-regression classifier on all-MiniLM-L6-v2 sentence embeddings, fitted on hf-synth's "
        "labelled examples of its taxonomy"
    )
    assert coverage_report(classified, labeller=skill_labeller())["labeller"] == skill_labeller()
    assert "mine.jsonl" in skill_labeller(examples="data/mine.jsonl")
    assert skill_labeller(taxonomy={"a": "b"}, model="my-model") == (
        "the nearest skill description by cosine of my-model sentence embeddings"
    )
    nearest = Dataset.from_list([{"skill": "coding", "scores": {"skill_similarity": 0.4}}])
    assert coverage_report(nearest)["labeller"].startswith("the nearest skill description")
    given = Dataset.from_list([{"skill": "coding"}])
    assert coverage_report(given)["labeller"] == "the rows' own 'skill' column"
