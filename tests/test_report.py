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
        ("Please summarize the following article.", ("summarize", "following")),
        ("Explain how rainbows form.", ("explain", "rainbows")),
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
        "ROUGE-L to the nearest seed",
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
    assert main(["report"]) == 2 and "Name the dataset" in capsys.readouterr().err
