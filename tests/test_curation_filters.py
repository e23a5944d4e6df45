import json
import random

import pytest
from datasets import Dataset
from rouge_score import rouge_scorer

from hf_synth.filters import (
    complexity_filter,
    greedy_novelty,
    greedy_novelty_fast,
    length_filter,
    minhash_dedup_filter,
    reading_grade,
    rouge_novelty_filter,
    split_filtered,
)

from .conftest import many_instructions

SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def reference_greedy(texts, threshold=0.7, pool=()):
    """The pairwise reference: rouge_score against every kept text, in order."""
    kept, keep = list(pool), []
    for text in texts:
        ok = all(SCORER.score(k, text)["rougeL"].fmeasure < threshold for k in kept)
        keep.append(ok)
        if ok:
            kept.append(text)
    return keep


@pytest.fixture(scope="module")
def real_instructions():
    return many_instructions(250)


def test_fast_novelty_keeps_exactly_the_reference_set(real_instructions):
    rng = random.Random(7)
    texts = list(real_instructions)
    texts += [t.replace(" the ", " a ", 1) for t in rng.sample(real_instructions, 25)]  # near-duplicates
    texts += rng.sample(real_instructions, 10)  # exact repeats
    texts += ["", "!!!", "a b c d e f g h i j", "a b c d e f g x y z"]  # empty and an F = 0.7 pair
    rng.shuffle(texts)
    result = greedy_novelty_fast(texts, 0.7)
    assert list(result.keep) == reference_greedy(texts, 0.7)
    assert (~result.keep).sum() >= 30
    dropped = [i for i, k in enumerate(result.keep) if not k]
    assert all(result.score[i] >= 0.7 and 0 <= result.nearest[i] < i for i in dropped)


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.9, 1.0])
def test_fast_novelty_other_thresholds(real_instructions, threshold):
    texts = real_instructions[:120]
    assert list(greedy_novelty_fast(texts, threshold).keep) == reference_greedy(texts, threshold)


def test_fast_novelty_on_long_prompts_matches_the_python_index():
    """Long prompts (a passage and a question, as T0-style corpora have) sharing passages and questions;
    the same corpus check on the real T0 prompts runs in bench/check_real_data.py."""
    rng = random.Random(3)
    words = [w.strip(".,").lower() for t in many_instructions(250) for w in t.split()]
    passages = [" ".join(rng.choices(words, k=rng.randint(40, 160))) for _ in range(60)]
    questions = [t for t in many_instructions(250)[::5]]
    texts = [f"{rng.choice(passages)}\n\nQuestion: {rng.choice(questions)}" for _ in range(400)]
    expected = [d.keep for d in greedy_novelty(texts, [])]
    assert list(greedy_novelty_fast(texts).keep) == expected
    assert 0 < sum(expected) < len(texts)


def test_pool_texts_count_as_kept():
    pool = ["write a poem about the sea", "write a poem about the sea"]  # near-identical pool entries stay
    texts = ["write a poem about the sea please", "explain tides to a child", "explain tides to a child now"]
    result = greedy_novelty_fast(texts, 0.7, pool=pool)
    assert list(result.keep) == reference_greedy(texts, 0.7, pool) == [False, True, False]
    assert result.nearest[0] in (0, 1) and result.nearest[2] == 3


def _ds():
    return Dataset.from_list(
        [
            {"instruction": "Write a poem about the sea.", "output": "Waves."},
            {"instruction": "Write a poem about the sea!", "output": "Blue waves everywhere."},
            {
                "instruction": "Explain, step by step, why the sky is blue, and include at least two examples.",
                "output": "Rayleigh scattering...",
            },
            {"instruction": "Hi", "output": ""},
        ]
    )


def test_filters_chain_into_scores_and_reasons_then_split():
    ds = rouge_novelty_filter(_ds(), "instruction")
    ds = length_filter(ds, "instruction", min_words=3, max_words=40)
    ds = complexity_filter(ds, "instruction", min_clauses=2)
    assert ds["filter_reasons"] == [
        ["instruction_too_simple"],
        ["rouge_l_too_similar", "instruction_too_simple"],
        [],
        ["instruction_too_short", "instruction_too_simple"],
    ]
    assert ds[1]["scores"]["rouge_l_novelty"] == 1.0 and ds[1]["scores"]["rouge_l_nearest_row"] == 0
    assert ds[2]["scores"]["instruction_words"] == 15 and ds[2]["scores"]["instruction_constraints"] >= 3
    assert ds[2]["scores"]["instruction_clauses"] >= 4
    kept, dropped = split_filtered(ds)
    assert kept["instruction"] == [_ds()[2]["instruction"]] and len(dropped) == 3


def test_length_filter_with_tokens(tiny_tokenizer):
    counts = [len(tiny_tokenizer(r["output"], add_special_tokens=False)["input_ids"]) for r in _ds()]
    limit = max(counts) - 1  # the longest output(s) go over the limit
    ds = length_filter(_ds(), "output", max_tokens=limit, tokenizer=tiny_tokenizer)
    assert [s["output_tokens"] for s in ds["scores"]] == counts
    assert [r == ["output_too_long"] for r in ds["filter_reasons"]] == [c > limit for c in counts]
    assert 1 <= sum(c > limit for c in counts) < len(counts)


def test_minhash_near_duplicates():
    base = "Describe the main causes of the French Revolution and their long term effects on Europe"
    ds = Dataset.from_list(
        [
            {"instruction": base},
            {"instruction": base + " today"},
            {"instruction": "List five fruits that are rich in vitamin C and explain how to store them"},
            {"instruction": base.upper()},
            {"instruction": ""},
        ]
    )
    out = minhash_dedup_filter(ds, threshold=0.7)
    assert out["filter_reasons"] == [[], ["near_duplicate"], [], ["near_duplicate"], []]
    assert [s["minhash_duplicate_of"] for s in out["scores"]] == [-1, 0, -1, 0, -1]


def test_reading_grade_orders_simple_and_hard_text():
    assert reading_grade("The cat sat. The dog ran.") < reading_grade(
        "Notwithstanding considerable methodological heterogeneity, contemporary epidemiological investigations "
        "consistently demonstrate associations between socioeconomic deprivation and cardiovascular morbidity."
    )
    assert reading_grade("") == 0.0


def test_missing_column_is_a_clear_error():
    with pytest.raises(ValueError, match="No 'prompt' column.*instruction, output"):
        rouge_novelty_filter(_ds(), "prompt")
    with pytest.raises(ValueError, match="run at least one filter"):
        split_filtered(_ds())


def test_greedy_cosine_dedup_keeps_the_first_of_each_group():
    import numpy as np

    from hf_synth.filters.embedding import greedy_cosine_dedup

    v = np.array([[1, 0], [0.99, 0.141], [0, 1], [0.6, 0.8], [1, 0]], dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    for block in (1, 2, 512):
        keep, best, nearest = greedy_cosine_dedup(v, 0.95, block=block)
        assert list(keep) == [True, False, True, True, False]
        assert list(nearest[[1, 4]]) == [0, 0]


def test_embedding_dedup_with_the_packaged_minilm():
    from hf_synth.filters.embedding import embedding_dedup_filter

    ds = Dataset.from_list(
        [
            {"instruction": "Write a poem about the ocean."},
            {"instruction": "Write a poem about the sea."},
            {"instruction": "How do I change a flat tire on a bicycle?"},
            {"instruction": "Give me a recipe for vegan pancakes."},
        ]
    )
    out = embedding_dedup_filter(ds, threshold=0.8)
    assert out["filter_reasons"] == [[], ["embedding_duplicate"], [], []]
    assert out[1]["scores"]["embedding_duplicate_of"] == 0 and out[1]["scores"]["embedding_max_cosine"] >= 0.8
    assert out[3]["scores"]["embedding_max_cosine"] < 0.5


def _toxicity_eval():
    from pathlib import Path

    rows = [
        json.loads(line)
        for line in (Path(__file__).parent / "data" / "toxicity_eval.jsonl").read_text().splitlines()
    ]
    return [r["text"] for r in rows], [bool(r["toxic"]) for r in rows]


def test_default_toxicity_classifier_on_labelled_sentences():
    from hf_synth.filters.toxicity import toxicity_scores

    texts, gold = _toxicity_eval()
    scores = toxicity_scores(texts)
    predictions = [s >= 0.5 for s in scores]
    assert sum(p == g for p, g in zip(predictions, gold, strict=True)) / len(gold) >= 0.9  # measured 93%
    assert not any(p and not g for p, g in zip(predictions, gold, strict=True))  # no benign row flagged
    assert toxicity_scores(["", "   "]) == [0.0, 0.0]


def test_toxicity_filter_columns_and_reasons():
    from hf_synth.filters.toxicity import toxicity_filter

    ds = Dataset.from_list(
        [
            {"instruction": "Reply to this comment.", "output": "Shut up, you pathetic loser."},
            {"instruction": "Summarize the causes of the Second World War.", "output": "Several causes..."},
        ]
    )
    out = toxicity_filter(ds)
    assert out["filter_reasons"] == [["toxic:output"], []]
    assert out[0]["scores"]["toxicity_output"] > 0.9 and out[1]["scores"]["toxicity_instruction"] < 0.5


def test_toxicity_with_a_transformers_classifier(tmp_path, tiny_tokenizer):
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from hf_synth.filters.toxicity import toxicity_scores

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tiny_tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        num_labels=2,
        id2label={0: "neutral", 1: "toxic"},
        label2id={"neutral": 0, "toxic": 1},
        pad_token_id=tiny_tokenizer.pad_token_id,
    )
    LlamaForSequenceClassification(config).save_pretrained(tmp_path / "clf")
    tiny_tokenizer.save_pretrained(tmp_path / "clf")
    scores = toxicity_scores(["Write a poem.", "Yes No", ""], model=str(tmp_path / "clf"))
    assert len(scores) == 3 and all(0 <= s <= 1 for s in scores) and scores[2] == 0.0
    config.id2label, config.label2id = {0: "positive", 1: "negative"}, {"positive": 0, "negative": 1}
    LlamaForSequenceClassification(config).save_pretrained(tmp_path / "sentiment")
    tiny_tokenizer.save_pretrained(tmp_path / "sentiment")
    with pytest.raises(ValueError, match="none of them a toxicity label"):
        toxicity_scores(["x"], model=str(tmp_path / "sentiment"))


@pytest.mark.parametrize(
    "text, expected",
    [
        (" Yes. It lists three tips.", (True, "It lists three tips.")),
        ("No - it ignores the word limit", (False, "it ignores the word limit")),
        ("[No]", (False, "")),
        (" Yes or No", (None, "Yes or No")),
        ("The response", (None, "The response")),
    ],
)
def test_parse_adherence(text, expected):
    from hf_synth.filters.judge import parse_adherence

    assert parse_adherence(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        (" 4 - clear but short", 4.0),
        ("3.5, decent", 3.5),
        ("8/10 good", 4.0),
        (" 7", None),
        ("0", None),
        ("excellent", None),
        ("", None),
    ],
)
def test_parse_rating(text, expected):
    from hf_synth.filters.judge import parse_rating

    assert parse_rating(text)[0] == expected


def test_judge_filter_marks_unparsable_and_drops_by_rule(scripted_engine_factory):
    from hf_synth.filters.judge import judge_filter

    replies = {
        ("adheres", "Sort the words."): " Yes, it sorts them.",
        ("quality", "Sort the words."): " 4.5 - correct and short.",
        ("adheres", "Write a haiku."): " No, it is a limerick.",
        ("quality", "Write a haiku."): " 2 - wrong form.",
        ("adheres", "Name a river."): " hmm",
        ("quality", "Name a river."): " 4",
    }

    def reply(text):
        kind = "adheres" if "follow the instruction" in text else "quality"
        instruction = text.split("Instruction:\n", 1)[1].split("\n", 1)[0]
        return replies[(kind, instruction)]

    ds = Dataset.from_list(
        [
            {"instruction": "Sort the words.", "output": "a, b"},
            {"instruction": "Write a haiku.", "output": "There once was..."},
            {"instruction": "Name a river.", "output": "Nile"},
        ]
    )
    out = judge_filter(ds, scripted_engine_factory(reply, model_id="judge-x"), min_quality=3)
    assert out["filter_reasons"] == [[], ["judge_not_adherent", "judge_low_quality"], []]
    first, _, third = out["scores"]
    assert first["judge_adheres"] is True and first["judge_quality"] == 4.5
    assert first["judge_adherence_reason"] == "it sorts them." and first["judge_model"] == "judge-x"
    assert third["judge_parsed"] is False and third["judge_adheres"] is None and third["judge_quality"] == 4.0
    strict = judge_filter(ds, scripted_engine_factory(reply), drop_unparsable=True)
    assert strict["filter_reasons"][2] == ["judge_unparsable"]


def test_judge_replies_are_checkpointed(tmp_path, scripted_engine_factory):
    from hf_synth.checkpoint import Checkpointer
    from hf_synth.filters.judge import judge_filter

    ds = Dataset.from_list([{"instruction": f"Task {i}.", "output": "Done."} for i in range(5)])
    first = judge_filter(
        ds,
        scripted_engine_factory(lambda t: " Yes, fine." if "follow" in t else " 4"),
        checkpointer=Checkpointer(tmp_path, chunk_size=2),
        batch_size=2,
    )
    idle = scripted_engine_factory(lambda t: pytest.fail("judged a finished chunk again"))
    again = judge_filter(ds, idle, checkpointer=Checkpointer(tmp_path, chunk_size=2), batch_size=2)
    assert again["scores"] == first["scores"] and all(s["judge_quality"] == 4.0 for s in again["scores"])
    assert "_judge_adherence" not in again.column_names
