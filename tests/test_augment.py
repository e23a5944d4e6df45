import pytest
from datasets import Dataset

from hf_synth.augment import (
    NegativeConfig,
    ParaphraseConfig,
    blend,
    clean_paraphrase,
    paraphrase,
    preference_pairs,
)

from .conftest import ScriptedEngine

ROWS = [
    {
        "id": "a",
        "instruction": "Give three tips for staying healthy.",
        "input": "",
        "output": "Sleep, eat, move.",
    },
    {
        "id": "b",
        "instruction": "Translate the sentence into French.",
        "input": "I like tea.",
        "output": "J'aime le thé.",
    },
    {"id": "c", "instruction": "Name a river in Africa.", "input": "", "output": "The Nile."},
]


def _original(text: str) -> str:
    return text.rsplit(":\n", 1)[1].removesuffix("Rewritten:").strip()


def test_paraphrase_keeps_rewordings_and_rejects_copies():
    def reply(text):
        original = _original(text)
        if "healthy" in original:
            return " What are three ways to keep in good health?"
        if "French" in original:
            return " " + original  # a copy: near-identical
        return " I'm sorry, I cannot do that."

    kept, rejected = paraphrase(Dataset.from_list(ROWS), ScriptedEngine(reply), ParaphraseConfig(k=2))
    assert kept["instruction"] == ["What are three ways to keep in good health?"] * 2
    assert kept["id"] == ["a-p0", "a-p1"] and set(kept["parent_id"]) == {"a"}
    assert (
        kept[0]["output"] == "Sleep, eat, move."
        and kept[0]["messages"][0]["content"] == kept[0]["instruction"]
    )
    assert kept[0]["strategy"] == "paraphrase:instruction" and kept[0]["model"] == "scripted-teacher"
    assert 0 < kept[0]["scores"]["rouge_l_to_parent"] < 0.8
    assert sorted(r[0] for r in rejected["filter_reasons"]) == ["near_identical"] * 2 + ["refusal"] * 2


def test_paraphrase_variants_ask_for_different_styles():
    engine = ScriptedEngine(lambda text: " Something else entirely, said differently.")
    paraphrase(Dataset.from_list(ROWS[:1]), engine, ParaphraseConfig(k=3))
    prompts = [t for call in engine.calls for t in call]
    assert len(prompts) == 3 and len({p.split("reads differently.")[1].split("\n")[0] for p in prompts}) == 3


def test_paraphrase_of_responses_keeps_the_instruction():
    engine = ScriptedEngine(
        lambda text: " Rewritten: Rest well, eat balanced meals and exercise.\n\nSecond paragraph."
    )
    kept, _ = paraphrase(Dataset.from_list(ROWS[:1]), engine, ParaphraseConfig(k=1, target="output"))
    assert kept[0]["instruction"] == ROWS[0]["instruction"]
    assert kept[0]["output"] == "Rest well, eat balanced meals and exercise.\n\nSecond paragraph."


@pytest.mark.parametrize(
    "text, target, expected",
    [
        (' Paraphrase: "Do X now."', "instruction", "Do X now."),
        ("Do X.\n\nNote: I changed words.", "instruction", "Do X."),
        ("", "output", ""),
    ],
)
def test_clean_paraphrase(text, target, expected):
    assert clean_paraphrase(text, target) == expected


def test_preference_pairs_are_dpo_format_and_marked():
    def reply(text):
        return "" if "river" in text else " A confident but wrong answer."

    pairs, rejected = preference_pairs(Dataset.from_list(ROWS), ScriptedEngine(reply), NegativeConfig(seed=1))
    assert pairs.column_names[:5] == ["id", "parent_id", "negative_kind", "prompt", "chosen"]
    assert "messages" not in pairs.column_names and "rejected" in pairs.column_names
    row = next(r for r in pairs if r["parent_id"] == "b")
    assert (
        row["prompt"] == "Translate the sentence into French.\n\nI like tea."
        and row["chosen"] == "J'aime le thé."
    )
    assert row["rejected"] == "A confident but wrong answer." and row["strategy"] == "negative"
    assert rejected["filter_reasons"] == [["empty_rejected"]]
    again, _ = preference_pairs(Dataset.from_list(ROWS), ScriptedEngine(reply), NegativeConfig(seed=1))
    assert again["negative_kind"] == pairs["negative_kind"]  # the kind is deterministic per row and seed


def test_negative_kinds_use_their_own_description():
    engine = ScriptedEngine(lambda text: " bad")
    preference_pairs(Dataset.from_list(ROWS), engine, NegativeConfig(kinds=["off_topic"]))
    assert all("related but different question" in t for call in engine.calls for t in call)
    with pytest.raises(ValueError, match="kinds must be some of"):
        NegativeConfig(kinds=["unsafe"])


def _source(name, n, dup=None):
    rows = [{"instruction": f"{name} task {i}", "output": f"answer {i}"} for i in range(n)]
    if dup:
        rows.append({"instruction": dup, "output": "x"})
    return Dataset.from_list(rows)


def test_blend_with_ratios_counts_and_dedup():
    sources = {"si": _source("si", 30, dup="Shared task!"), "evol": _source("evol", 10, dup="shared TASK")}
    mixed, summary = blend(sources, ratios={"si": 0.75, "evol": 0.25}, total=20, seed=1)
    assert len(mixed) == 20 and sorted(set(mixed["source"])) == ["evol", "si"]
    assert [s["selected"] for s in summary] == [15, 5]
    assert mixed.column_names == ["id", "instruction", "input", "output", "messages", "source", "source_row"]
    assert (
        sum(normal == "shared task" for normal in (t.lower().strip("!") for t in mixed["instruction"])) <= 1
    )
    all_rows, summary = blend(sources, dedup=True)
    assert len(all_rows) == 41 and summary[1]["available"] == 10  # evol's duplicate of si's row is gone
    counted, summary = blend(sources, counts={"si": 3, "evol": 50})
    assert len(counted) == 3 + 10 and summary[1]["asked"] == 50 and summary[1]["selected"] == 10


def test_blend_errors():
    with pytest.raises(ValueError, match="no 'output' column"):
        blend({"x": Dataset.from_list([{"instruction": "a"}])})
    with pytest.raises(ValueError, match="Unknown source"):
        blend({"x": _source("x", 2)}, ratios={"y": 1})
    with pytest.raises(ValueError, match="not both"):
        blend({"x": _source("x", 2)}, ratios={"x": 1}, counts={"x": 1})


def _write_jsonl(path, rows):
    import json

    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_cli_blend_paraphrase_and_negatives(tmp_path, tiny_model_dir, capsys):
    import json

    from hf_synth.cli import main

    a = _write_jsonl(tmp_path / "a.jsonl", [{"instruction": f"A task {i}", "output": "x"} for i in range(8)])
    b = _write_jsonl(tmp_path / "b.jsonl", [{"instruction": f"B task {i}", "output": "y"} for i in range(8)])
    assert (
        main(
            [
                "blend",
                "--source",
                f"a={a}",
                "--source",
                f"b={b}",
                "--ratio",
                "a=3",
                "--ratio",
                "b=1",
                "--total",
                "8",
                "--output",
                str(tmp_path / "mix"),
            ]
        )
        == 0
    )
    summary = json.loads((tmp_path / "mix" / "summary.json").read_text())
    assert [s["selected"] for s in summary["sources"]] == [6, 2] and "share" in capsys.readouterr().out
    assert summary["diversity"]["rows"] == 8
    assert main(["blend", "--source", f"a={a}", "--ratio", "a=x", "--output", str(tmp_path / "m2")]) == 2
    assert "is not a number" in capsys.readouterr().err

    common = ["--model", str(tiny_model_dir), "--batch-size", "4"]
    assert (
        main(["paraphrase", "--input", str(a), "--output", str(tmp_path / "para"), "--k", "2", *common]) == 0
    )
    para = json.loads((tmp_path / "para" / "summary.json").read_text())
    assert para["paraphrases"] == 16 and para["kept"] + para["rejected"] == 16
    assert para["diversity"]["rows"] == para["kept"]
    assert para["diversity"]["rouge_l_reference"] == "nearest of 8 seeds"  # against the input instructions
    assert (
        main(
            [
                "negatives",
                "--input",
                str(a),
                "--output",
                str(tmp_path / "neg"),
                "--kinds",
                "off_topic",
                *common,
            ]
        )
        == 0
    )
    neg = json.loads((tmp_path / "neg" / "summary.json").read_text())
    assert neg["pairs"] + neg["rejected"] == 8
    # the pairs' prompts (the input's tasks): no ROUGE-L shares against the input they come from
    assert neg["diversity"]["rows"] == neg["pairs"] and neg["diversity"]["column"] == "prompt"
    assert "rouge_l_ge_0.7" not in neg["diversity"]
    from huggingface_hub import DatasetCard

    for folder, method in (("mix", "blend"), ("para", "paraphrase"), ("neg", "negatives")):
        card = DatasetCard.load(tmp_path / folder / "README.md")  # every output kind has a card
        assert card.data.pretty_name == f"hf-synth {method} dataset" and "## How it was made" in card.text
    assert "`k` | `2`" in DatasetCard.load(tmp_path / "para" / "README.md").text
    mix_card = DatasetCard.load(tmp_path / "mix" / "README.md").text
    assert (
        "## Diversity" in mix_card and f"| `distinct_2` | {summary['diversity']['distinct_2']} |" in mix_card
    )
    neg_card = DatasetCard.load(tmp_path / "neg" / "README.md").text
    assert "on the teacher model" in neg_card
    assert "## Diversity" in neg_card and f"| `rows` | {neg['pairs']} |" in neg_card
    assert main(["negatives", "--input", str(a), "--output", str(tmp_path / "n2"), "--kinds", "rude"]) == 2


def test_template_slots_with_given_and_proposed_values():
    from hf_synth.augment import fill_template, propose_slot_values, template_slots

    template = "Explain the concept of [X] in the context of [Y] for an audience of [Z]."
    assert template_slots(template) == ["X", "Y", "Z"]

    def reply(text):
        if "List 6 different values" in text:
            slot = text.split("could replace [")[1].split("]")[0]
            return f" {slot}-one\n2. {slot}-two\n3. {slot}-two\n4. {slot}-three\n5. lentil soup\n6. [{slot}]"
        return "An answer."

    engine = ScriptedEngine(reply)
    values = propose_slot_values(template, engine, count=6)
    assert values == {s: [f"{s}-one", f"{s}-two", f"{s}-three"] for s in "XYZ"}  # duplicates removed
    rows = fill_template(template, values, engine, num=10, seed=3, template_id="t1")
    combos = [r["slot_values"] for r in rows]
    assert len(rows) == 10 and len(set(combos)) == 10  # no repeated combination
    first = rows[0]
    import json

    filled = json.loads(first["slot_values"])
    assert first["instruction"] == template.replace("[X]", filled["X"]).replace("[Y]", filled["Y"]).replace(
        "[Z]", filled["Z"]
    )
    assert (
        first["output"] == "An answer."
        and first["template_id"] == "t1"
        and first["strategy"] == "template_slots"
    )
    again = fill_template(template, values, engine, num=10, seed=3, template_id="t1")
    assert again["slot_values"] == combos
    assert len(fill_template(template, values, engine, num=100)) == 27  # all 3x3x3 combinations, no more
    with pytest.raises(ValueError, match="No values for slot"):
        fill_template(template, {"X": ["a"]}, engine)
    with pytest.raises(ValueError, match="no \\[SLOT\\]"):
        fill_template("No slots here.", {}, engine)


def test_back_translation_keeps_the_similarity_band():
    from hf_synth.augment import back_translate

    back = {
        "Give three tips for staying healthy.": "Give three pieces of advice for keeping in good health.",
        "Translate the sentence into French.": "Translate the sentence into French.",
        "Name a river in Africa.": "Describe the history of the Roman empire in detail.",
    }

    def reply(text):
        source = text.split("Text:\n", 1)[1].rsplit("\nTranslation:", 1)[0].strip()  # drop the prefill
        if "into French" in text.split("\n")[0]:
            return " [fr] " + source
        return " " + back[source.removeprefix("[fr] ")]

    kept, rejected = back_translate(Dataset.from_list(ROWS), ScriptedEngine(reply), pivot="French")
    assert kept["parent_id"] == ["a"] and kept[0]["pivot_language"] == "French"
    assert kept[0]["pivot_text"].startswith("[fr]") and kept[0]["output"] == "Sleep, eat, move."
    assert 0.75 <= kept[0]["scores"]["embedding_similarity"] < 0.98
    assert {r["parent_id"]: r["filter_reasons"] for r in rejected} == {
        "b": ["unchanged"],
        "c": ["meaning_drift"],
    }


def test_cli_slots_and_backtranslate(tmp_path, tiny_model_dir, capsys):
    import json

    from hf_synth.cli import main

    common = ["--model", str(tiny_model_dir), "--batch-size", "4"]
    assert (
        main(
            [
                "slots",
                "--template",
                "Explain [X] to [Y].",
                "--values",
                "X=gravity|tides|rust",
                "--values",
                "Y=a child|a chef",
                "--num",
                "4",
                "--output",
                str(tmp_path / "s"),
                *common,
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in (tmp_path / "s" / "data.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and len({r["slot_values"] for r in rows}) == 4
    assert all(r["instruction"].startswith("Explain ") for r in rows)
    slots_diversity = json.loads((tmp_path / "s" / "summary.json").read_text())["diversity"]
    assert slots_diversity["rows"] == 4 and slots_diversity["root_verbs"] == 1  # all "Explain ..."
    assert (
        main(["slots", "--template", "Explain [X].", "--values", "Q=a", "--output", str(tmp_path / "s2")])
        == 2
    )
    assert "Template slots are X" in capsys.readouterr().err
    data = tmp_path / "d.jsonl"
    data.write_text('{"instruction": "Name a river.", "output": "Nile"}\n')
    assert main(["backtranslate", "--input", str(data), "--output", str(tmp_path / "b"), *common]) == 0
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    assert summary["rows"] == 1 and summary["kept"] + sum(summary["rejected"].values()) == 1
    assert summary["diversity"]["rows"] == summary["kept"]
    from huggingface_hub import DatasetCard

    for folder, method in (("s", "template slots"), ("b", "back-translation")):
        card = DatasetCard.load(tmp_path / folder / "README.md")
        assert card.data.pretty_name == f"hf-synth {method} dataset" and "## How it was made" in card.text
    assert f"| `rows` | {slots_diversity['rows']} |" in DatasetCard.load(tmp_path / "s" / "README.md").text


def test_paraphrase_judge_rejects_changed_tasks():
    rewordings = {
        "Give three tips for staying healthy.": " List three habits that keep a person healthy.",
        "Translate the sentence into French.": " Summarize the sentence in one word.",
        "Name a river in Africa.": " Tell me the name of one African river.",
    }

    def reply(text):
        if "Do these two instructions ask for the same thing" in text:
            second = text.split("Second instruction:\n")[1].split("\n")[0]
            return " No." if "Summarize" in second else (" maybe" if "African" in second else " Yes")
        return rewordings[_original(text)]

    kept, rejected = paraphrase(
        Dataset.from_list(ROWS),
        ScriptedEngine(reply),
        ParaphraseConfig(k=1),
        judge=ScriptedEngine(reply, model_id="judge"),
    )
    assert kept["parent_id"] == ["a"] and kept[0]["scores"]["same_task"] is True
    reasons = {r["parent_id"]: r["filter_reasons"] for r in rejected}
    assert reasons == {"b": ["task_changed"], "c": ["judge_unparsable"]}
    assert rejected.filter(lambda r: r["parent_id"] == "b")[0]["scores"]["same_task"] is False


def test_cli_paraphrase_with_task_check(tmp_path, tiny_model_dir):
    import json

    from hf_synth.cli import main

    data = _write_jsonl(tmp_path / "a.jsonl", [{"instruction": "Name a river in Africa.", "output": "Nile"}])
    assert (
        main(
            [
                "paraphrase",
                "--input",
                str(data),
                "--output",
                str(tmp_path / "p"),
                "--k",
                "2",
                "--check-task",
                "--model",
                str(tiny_model_dir),
            ]
        )
        == 0
    )
    rows = [json.loads(line) for line in (tmp_path / "p" / "rejected.jsonl").read_text().splitlines()]
    rows += [json.loads(line) for line in (tmp_path / "p" / "data.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all("same_task" in r["scores"] for r in rows)


def test_back_translation_with_seq2seq_translation_models(tmp_path, tiny_tokenizer):
    import torch
    from transformers import BartConfig, BartForConditionalGeneration

    from hf_synth.augment import back_translate

    torch.manual_seed(0)
    config = BartConfig(
        vocab_size=len(tiny_tokenizer),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=512,
        pad_token_id=tiny_tokenizer.pad_token_id,
        eos_token_id=tiny_tokenizer.eos_token_id,
        bos_token_id=tiny_tokenizer.eos_token_id,
        decoder_start_token_id=tiny_tokenizer.eos_token_id,
        forced_eos_token_id=None,
    )
    for name in ("to", "back"):
        BartForConditionalGeneration(config).save_pretrained(tmp_path / name)
        tiny_tokenizer.save_pretrained(tmp_path / name)
    llm = ScriptedEngine(lambda text: pytest.fail("the LLM was asked to translate"))
    kept, rejected = back_translate(
        Dataset.from_list(ROWS),
        llm,
        to_pivot_model=str(tmp_path / "to"),
        from_pivot_model=str(tmp_path / "back"),
    )
    rows = kept.to_list() + rejected.to_list()
    assert len(rows) == 3
    assert all(r["model"] == f"{tmp_path / 'to'} -> {tmp_path / 'back'}" for r in rows)


def test_broken_paraphrases_and_flawed_answers_are_rejected():
    from hf_synth.augment import NegativeConfig, preference_pairs

    rewordings = {
        "Give three tips for staying healthy.": " List three habits \ufffd that keep a person healthy.",
        "Translate the sentence into French.": " Render the sentence (in French",
        "Name a river in Africa.": " Tell me the name of one African river.",
    }
    kept, rejected = paraphrase(
        Dataset.from_list(ROWS),
        ScriptedEngine(lambda text: rewordings[_original(text)]),
        ParaphraseConfig(k=1),
    )
    assert kept["parent_id"] == ["c"]
    reasons = {r["parent_id"]: r["filter_reasons"] for r in rejected}
    assert reasons == {"a": ["paraphrase_replacement_character"], "b": ["paraphrase_unbalanced"]}
    rows = [{"instruction": "Name a colour.", "output": "Blue."}]
    pairs, dropped = preference_pairs(
        Dataset.from_list(rows),
        ScriptedEngine(lambda text: "Gr\x00een."),
        NegativeConfig(kinds=["off_topic"]),
    )
    assert len(pairs) == 0 and dropped[0]["filter_reasons"] == ["rejected_control_characters"]
