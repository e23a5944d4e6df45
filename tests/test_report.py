import base64
import re

import pytest
from datasets import Dataset

from hf_synth.cli import main
from hf_synth.report import build_report, verb_object


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Write a poem about the sea.", ("write", "poem")),
        ("Please summarize the following article.", ("summarize", "article")),
        ("Explain how rainbows form.", ("explain", "")),  # a clause, no direct object
        ("Create a short poem", ("create", "poem")),
        ("Create a short poem about the sea.", ("create", "poem")),
        ("Write a short, funny story for children.", ("write", "story")),
        ("Give three tips for staying healthy.", ("give", "tips")),
        ("Tell me a joke.", ("tell", "joke")),
        ("List 5 famous painters.", ("list", "painters")),
        ("Write a persuasive essay on recycling.", ("write", "essay")),
        ("Rewrite this sentence in the passive voice.", ("rewrite", "sentence")),
        ("Write a Python function that reverses a string.", ("write", "function")),
        ("What is the capital of France?", None),
        ("I'm planning a trip to Rome.", None),
        ("", None),
    ],
)
def test_verb_object_approximation(text, expected):
    assert verb_object(text) == expected


def _pngs(page: str) -> dict[str, bytes]:
    titles = re.findall(r"<h2>(.*?)</h2>", page)
    images = re.findall(r'base64,([A-Za-z0-9+/=]+)"', page)
    assert len(titles) == len(images)
    return {t: base64.b64decode(i) for t, i in zip(titles, images, strict=True)}


def test_report_sections_are_drawn_from_what_the_data_has():
    rows = [
        {
            "instruction": f"Write a poem about topic {i}.",
            "output": "word " * (i + 1),
            "root_id": "r",
            "round": 1 + i % 2,
            "scores": {"rouge_l_max": 0.1 * (i % 7)},
        }
        for i in range(12)
    ]
    rejected = Dataset.from_list(
        [{"filter_reasons": ["refusal"]}, {"filter_reasons": ["refusal", "empty_output"]}]
    )
    coverage = {
        "skills": {"creative_writing": {"count": 12, "share": 1.0}, "coding": {"count": 0, "share": 0.0}},
        "missing": ["coding"],
    }
    page, numbers = build_report(
        Dataset.from_list(rows), rejected=rejected, coverage=coverage, use_spacy=False
    )
    images = _pngs(page)
    assert list(images) == [
        "Length of instructions",
        "Length of outputs",
        "ROUGE-L to the nearest earlier text",  # the rows' own score: seeds + earlier rows
        "Verb–noun structure",
        "Skill coverage",
        "Rows dropped per filter",
        "Evolution lineage depth",
    ]
    assert all(png.startswith(b"\x89PNG") and len(png) > 2000 for png in images.values())
    assert numbers["drops"] == {"refusal": 2, "empty_output": 1}
    assert numbers["lineage_depth"] == {1: 6, 2: 6}
    assert numbers["verb_object"][0] == ("write poem", 12)
    assert "missing: coding" in page
    assert "skills labelled by the rows&#x27; own &#x27;skill&#x27; column" in page  # no labeller recorded
    assert numbers["rouge_l_to_pool"][:2] == [0.0, 0.1] and "rouge_l_to_seeds" not in numbers


def test_report_with_seeds_and_few_columns():
    page, numbers = build_report(
        Dataset.from_list([{"instruction": "Write a poem about the sea."}]),
        seeds=["Write a poem about the sea.", "Name a river."],
        use_spacy=False,
    )
    assert numbers["rouge_l_to_seeds"] == [1.0]
    assert list(_pngs(page)) == [
        "Length of instructions",
        "ROUGE-L to the nearest seed",
        "Verb–noun structure",
    ]


def test_cli_report_writes_html(tmp_path, capsys):
    data = tmp_path / "d.jsonl"
    data.write_text(
        '{"instruction": "Write a poem about the sea.", "output": "Waves."}\n'
        '{"instruction": "Translate hello into French.", "output": "Bonjour."}\n'
    )
    assert main(["report", str(data), "--out", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    assert "<h2>Skill coverage</h2>" in page and "<h2>Length of outputs</h2>" in page
    # the default labeller is the classifier, and the caption says so (not "embedding nearest skill")
    labeller = (
        "a logistic-regression classifier on all-MiniLM-L6-v2 sentence embeddings, fitted on hf-synth&#x27;s "
        "labelled examples of its taxonomy"
    )
    assert f"skills labelled by {labeller}" in page
    assert "skills labelled by a logistic-regression classifier" in capsys.readouterr().out
    assert main(["report"]) == 2 and "Name the dataset" in capsys.readouterr().err


class _Token:
    """A token as spaCy's parser gives it (dep_, pos_, lemma_, children, subtree), for the parse path."""

    def __init__(self, text, dep, pos, children=()):
        self.lemma_, self.dep_, self.pos_, self.children = text, dep, pos, list(children)

    @property
    def subtree(self):
        yield self
        for child in self.children:
            yield from child.subtree


def _parse(root):
    return lambda text: list(root.subtree)


def test_verb_object_from_a_dependency_parse_is_the_object_head_noun():
    # "Create a short poem": spaCy's parse, poem is the dobj and short its amod
    poem = _Token("poem", "dobj", "NOUN", [_Token("a", "det", "DET"), _Token("short", "amod", "ADJ")])
    assert verb_object("Create a short poem", _parse(_Token("create", "ROOT", "VERB", [poem]))) == (
        "create",
        "poem",
    )
    # a parse that made the adjective the object: the noun below it is the object
    short = _Token("short", "dobj", "ADJ", [_Token("poem", "npadvmod", "NOUN")])
    assert verb_object("Create a short poem", _parse(_Token("create", "ROOT", "VERB", [short]))) == (
        "create",
        "poem",
    )
    form = _Token("form", "ccomp", "VERB", [_Token("rainbow", "nsubj", "NOUN")])
    assert verb_object("Explain how rainbows form", _parse(_Token("explain", "ROOT", "VERB", [form]))) == (
        "explain",
        "",
    )
    assert verb_object("What is it?", _parse(_Token("be", "ROOT", "AUX"))) is None


def test_count_axes_have_whole_number_ticks(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    from hf_synth import report

    figures = []
    monkeypatch.setattr(report, "_png", lambda fig: figures.append(fig) or "")
    report._histogram([3, 4, 4, 7], "lengths", "words")  # 1-2 rows per bin
    report._bars(["a", "b"], [1, 2], "Skills")
    report._verb_noun_plot([("write", "poem"), ("write", "story"), ("list", "")])
    counts = [figures[0].axes[0].yaxis, figures[0].axes[0].xaxis, figures[1].axes[0].xaxis]
    counts.append(figures[2].axes[0].xaxis)
    for axis in counts:
        ticks = axis.get_majorticklocs()
        assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks


def test_card_says_what_labelled_the_skills():
    from hf_synth.cards import build_card

    coverage = {
        "skills": {"coding": {"count": 1, "share": 1.0}},
        "missing": [],
        "labeller": "a logistic-regression classifier on all-MiniLM-L6-v2 sentence embeddings",
    }
    data = Dataset.from_list([{"instruction": "Write a Python function.", "output": "def f(): pass"}])
    card = build_card(data, method="test", tags=[], steps=["a step"], coverage=coverage)
    assert "labelled by a logistic-regression classifier on all-MiniLM-L6-v2 sentence embeddings" in card.text
    assert "embedding similarity" not in card.text


def test_a_spacy_that_fails_to_load_is_reported_not_swallowed(monkeypatch, caplog):
    """spaCy present but its model missing: the report says it used the approximation, and the error is
    logged (the parse was wanted; it must not silently turn into the approximation)."""
    import sys
    import types

    def load(name, **kwargs):
        raise OSError(f"[E050] Can't find model '{name}'.")

    spacy = types.ModuleType("spacy")  # installed, without its model (datasets looks up spacy.Language)
    spacy.load, spacy.Language = load, type("Language", (), {})
    monkeypatch.setitem(sys.modules, "spacy", spacy)
    dataset = Dataset.from_list([{"instruction": "Write a poem about the sea.", "output": "Waves."}] * 3)
    with caplog.at_level("WARNING", logger="hf_synth.report"):
        page, numbers = build_report(dataset, use_spacy=True)
    assert any("Can't find model 'en_core_web_sm'" in r.getMessage() for r in caplog.records), caplog.text
    assert "approximation for imperative instructions" in page and numbers["verb_object"] == [
        ("write poem", 3)
    ]


def test_the_acceptance_rate_plot_draws_one_bar_per_group(monkeypatch):
    """The human-review section's figure: a bar per skill and operation, as long as its acceptance rate."""
    from hf_synth import report

    drawn = []
    real_png = report._png

    def capture(fig):
        ax = fig.axes[0]
        drawn.append(
            (
                ax.get_title(),
                [t.get_text() for t in ax.get_yticklabels()],
                [round(p.get_width(), 1) for p in ax.patches],
            )
        )
        return real_png(fig)

    monkeypatch.setattr(report, "_png", capture)
    review = {
        "reviewed": 4,
        "rows_in_review": 5,
        "accepted": 2,
        "edited": 1,
        "rejected": 1,
        "acceptance_rate": 0.75,
        "by_skill": {
            "writing": {"reviewed": 3, "acceptance_rate": 2 / 3},
            "math": {"reviewed": 1, "acceptance_rate": 1.0},
        },
        "by_operation": {"deepening": {"reviewed": 2, "acceptance_rate": 0.5}},
    }
    dataset = Dataset.from_list([{"instruction": "Write a poem.", "output": "x"}] * 5)
    page, numbers = build_report(dataset, review=review, use_spacy=False)
    assert numbers["review"] == review
    assert "Human review" in page and "acceptance 75.0%" in page
    title, labels, widths = next(d for d in drawn if d[0] == "Acceptance rate")
    # barh draws the first label at the bottom: read top to bottom
    assert labels[::-1] == ["skill writing (3)", "skill math (1)", "operation deepening (2)"]
    assert widths[::-1] == [66.7, 100.0, 50.0]
