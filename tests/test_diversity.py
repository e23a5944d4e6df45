"""Diversity figures with concrete expected values, and their place in summary.json, the card and the report."""

from __future__ import annotations

import json

import numpy as np
import pytest
from datasets import Dataset

from hf_synth.curation.diversity import (
    comparison_table,
    dataset_diversity,
    distinct_n,
    diversity_numbers,
    entropy_bits,
    mean_pairwise_distance,
    root_verb_count,
    vendi_score,
)


def test_vendi_of_identical_and_orthogonal_vectors():
    assert vendi_score(np.ones((7, 4))) == pytest.approx(1.0)
    assert vendi_score(np.eye(5) * 3.0) == pytest.approx(5.0)  # scale does not matter: cosine kernel
    two_groups = np.array([[1.0, 0], [1.0, 0], [0, 2.0], [0, 2.0]])
    assert vendi_score(two_groups) == pytest.approx(2.0)


def test_vendi_and_mean_distance_equal_the_brute_force_definitions():
    x = np.random.default_rng(3).normal(size=(40, 6))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    k = x @ x.T
    eig = np.linalg.eigvalsh(k / len(x))
    eig = eig[eig > 1e-12]
    assert vendi_score(x) == pytest.approx(float(np.exp(-(eig * np.log(eig)).sum())), rel=1e-9)
    pairs = [1 - k[i, j] for i in range(len(x)) for j in range(i + 1, len(x))]
    assert mean_pairwise_distance(x) == pytest.approx(float(np.mean(pairs)), rel=1e-9)
    assert mean_pairwise_distance(np.ones((3, 2))) == pytest.approx(0.0, abs=1e-12)
    assert mean_pairwise_distance(np.eye(4)) == pytest.approx(1.0)


def test_distinct_n_entropy_and_root_verbs_on_tiny_lists():
    texts = ["The cat sat.", "the cat ran!"]
    assert distinct_n(texts, 1) == pytest.approx(4 / 6)  # the, cat, sat, ran of 6 tokens
    assert distinct_n(texts, 2) == pytest.approx(3 / 4)  # 'the cat' twice
    assert distinct_n([], 2) == 0.0
    assert entropy_bits(["a", "a", "b", "b"]) == pytest.approx(1.0)
    assert entropy_bits(["a", "b", "c", "d"]) == pytest.approx(2.0)
    assert entropy_bits(["a"] * 3) == 0.0
    assert root_verb_count(["Write a poem.", "Write a story.", "Explain tides.", "What is love?"]) == 2


def test_rouge_shares_against_seeds_and_pool():
    seeds = ["Write a poem about the sea.", "List three prime numbers."]
    rows = ["Write a poem about the sea.", "Write a poem about the sky.", "Describe a volcano eruption."]
    numbers = diversity_numbers(rows, seeds=seeds, skills=["a", "a", "b"], embeddings=False)
    # F of the second to the first seed: LCS 5 of 6 tokens -> 0.833; the third shares nothing with a seed
    assert numbers["rouge_l_ge_0.7"] == pytest.approx(2 / 3, abs=1e-4)
    assert numbers["rouge_l_ge_0.5"] == pytest.approx(2 / 3, abs=1e-4)
    assert numbers["skill_entropy_bits"] == pytest.approx(0.9183, abs=1e-4) and numbers["skills"] == 2
    assert "vendi_score" not in numbers and numbers["root_verbs"] == 2
    data = Dataset.from_list(
        [{"instruction": t, "scores": {"rouge_l_max": s}} for t, s in zip(rows, [0.9, 0.6, 0.1], strict=True)]
    )
    pool = dataset_diversity(data, embeddings=False)
    assert pool["rouge_l_ge_0.7"] == pytest.approx(1 / 3, abs=1e-4)
    assert pool["rouge_l_ge_0.5"] == pytest.approx(2 / 3, abs=1e-4)
    assert "generation pool" in pool["rouge_l_reference"]


def test_embedding_figures_from_given_vectors():
    numbers = diversity_numbers(["a b", "c d", "e f"], vectors=np.eye(3))
    assert numbers["vendi_score"] == pytest.approx(3.0) and numbers[
        "mean_pairwise_distance"
    ] == pytest.approx(1.0)


def test_comparison_table_has_one_column_per_run():
    table = comparison_table({"runA": {"rows": 3, "vendi_score": 2.5}, "runB": {"rows": 4}})
    lines = table.splitlines()
    assert lines[0].split() == ["figure", "runA", "runB"]
    vendi = next(line for line in lines if line.startswith("vendi_score")).split()
    assert vendi == ["vendi_score", "2.5", "-"]


def test_filter_run_records_diversity_in_summary_card_and_report_compare(tmp_path, capsys):
    from hf_synth.cli import main

    rows = [
        {"instruction": "Write a poem about the sea.", "output": "Waves."},
        {"instruction": "Explain how tides work.", "output": "The moon."},
        {"instruction": "List three prime numbers.", "output": "2, 3, 5."},
    ]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    config = tmp_path / "f.yaml"
    config.write_text("filters:\n  - name: length\n    column: output\n    max_words: 1\n", encoding="utf-8")
    runs = []
    for name, words in (("one", 1), ("all", 5)):
        config.write_text(
            f"filters:\n  - name: length\n    column: output\n    max_words: {words}\n", encoding="utf-8"
        )
        out = tmp_path / name
        assert main(["filter", "--input", str(data), "--config", str(config), "--output", str(out)]) == 0
        runs.append(out)
    one = json.loads((runs[0] / "summary.json").read_text())["diversity"]
    every = json.loads((runs[1] / "summary.json").read_text())["diversity"]
    assert one["rows"] == 1 and one["vendi_score"] == pytest.approx(1.0)
    assert every["rows"] == 3 and 1.0 < every["vendi_score"] <= 3.0 and every["root_verbs"] == 3
    card = (runs[1] / "README.md").read_text()
    assert "## Diversity" in card and f"| `vendi_score` | {every['vendi_score']} |" in card
    capsys.readouterr()
    assert main(["report", "--compare", str(runs[0]), str(runs[1])]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["figure", str(runs[0]), str(runs[1])]
    assert next(line for line in lines if line.startswith("rows")).split() == ["rows", "1", "3"]


def test_report_prints_diversity_and_writes_it_to_json_and_html_and_compare_recomputes_with_seeds(
    tmp_path, capsys
):
    from hf_synth.cli import main

    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(
        "".join(
            json.dumps({"instruction": t, "output": "x"}) + "\n"
            for t in ("Write a poem about the sea.", "Explain how tides work.")
        ),
        encoding="utf-8",
    )
    rows = [
        {"instruction": "Write a poem about the sea.", "output": "Waves."},  # a seed, word for word
        {"instruction": "Write a poem about the sea at night.", "output": "Moon."},  # ROUGE-L 0.83
        {"instruction": "List three prime numbers.", "output": "2, 3, 5."},  # far from both
    ]
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    report = tmp_path / "report.json"
    assert main(["report", str(data), "--seeds", str(seeds), "--out", str(report)]) == 0
    printed = capsys.readouterr().out
    assert "diversity: distinct_1 " in printed and "rouge_l_ge_0.7 0.6667" in printed
    numbers = json.loads(report.read_text())["diversity"]
    assert numbers["rows"] == 3 and numbers["rouge_l_ge_0.7"] == 0.6667
    assert numbers["rouge_l_reference"] == "nearest of 2 seeds" and numbers["root_verbs"] == 2
    html = tmp_path / "report.html"
    assert main(["report", str(data), "--seeds", str(seeds), "--out", str(html)]) == 0
    page = html.read_text(encoding="utf-8")
    assert "<h2>Diversity</h2>" in page and "vendi_score" in page
    capsys.readouterr()
    table = tmp_path / "compare.json"
    assert (
        main(["report", "--compare", str(seeds), str(data), "--seeds", str(seeds), "--out", str(table)]) == 0
    )
    lines = capsys.readouterr().out.splitlines()
    share = next(line for line in lines if line.startswith("rouge_l_ge_0.7")).split()
    assert share == ["rouge_l_ge_0.7", "1", "0.6667"]  # the seeds against themselves, then the rows
    assert lines[-1] == "ROUGE-L shares against: nearest of 2 seeds"
    assert json.loads(table.read_text())[str(data)]["rows"] == 3


def test_a_column_of_chat_messages_counts_as_its_user_turns_and_is_named():
    data = Dataset.from_list(
        [
            {
                "prompt": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "Write a poem."},
                ]
            },
            {"prompt": [{"role": "user", "content": "Explain tides."}]},
        ]
    )
    numbers = dataset_diversity(data, column="prompt", embeddings=False)
    # the user turns only: 'write a poem explain tides' -> 5 distinct of 5 words, 2 root verbs
    assert numbers["rows"] == 2 and numbers["distinct_1"] == 1.0 and numbers["root_verbs"] == 2
    assert numbers["column"] == "prompt"
    assert "column" not in dataset_diversity(Dataset.from_list([{"instruction": "Write."}]), embeddings=False)


def test_generate_run_records_the_prompts_diversity_in_summary_and_card(tmp_path, tiny_model_dir):
    from hf_synth.cli import main

    data = tmp_path / "prompts.jsonl"
    data.write_text(
        "".join(json.dumps({"prompt": p}) + "\n" for p in ["Say hi.", "Name a colour.", "Count to three."])
    )
    out = tmp_path / "gen"
    args = ["generate", "--input", str(data), "--output", str(out), "--model", str(tiny_model_dir)]
    assert main([*args, "--max-new-tokens", "4"]) == 0
    diversity = json.loads((out / "summary.json").read_text())["diversity"]
    assert diversity["rows"] == 3 and diversity["column"] == "prompt" and diversity["root_verbs"] == 3
    assert 1.0 < diversity["vendi_score"] <= 3.0
    card = (out / "README.md").read_text()
    assert "## Diversity" in card and f"| `vendi_score` | {diversity['vendi_score']} |" in card
