"""Publishing: the local repo layout, and the real push_to_hub code path against a local fake Hub."""

import io
import logging
import re
from contextlib import redirect_stderr, redirect_stdout

import pytest
from datasets import Dataset, load_dataset
from huggingface_hub import DatasetCard

from hf_synth import SelfInstruct, SelfInstructConfig, save_run, self_instruct_card
from hf_synth.cli import main
from hf_synth.hub import HubPushError, push_to_hub, write_repo

from .conftest import ScriptedEngine
from .hub_server import READ_TOKEN, WRITE_TOKEN, FakeHub
from .test_self_instruct import SEEDS, make_reply


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    engine = ScriptedEngine(make_reply())
    pipeline = SelfInstruct(engine, SelfInstructConfig(num_instructions=6, seed=3))
    result = pipeline.run(Dataset.from_list(SEEDS))
    out = tmp_path_factory.mktemp("run")
    save_run(out, result.dataset, result.rejected, summary=result.summary.to_dict())
    card = self_instruct_card(
        result.dataset,
        result.summary.to_dict(),
        model=engine.model_id,
        prompt_templates=pipeline.prompt_templates(),
        generation_params=pipeline.generation_params(),
        seeds="tests' seeds",
        source_datasets=["me/seed-tasks"],
    )
    card.save(str(out / "README.md"))
    return out, result


@pytest.fixture
def fake_hub(monkeypatch):
    with FakeHub() as hub:
        # what HF_ENDPOINT does when set before huggingface_hub is imported
        monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", hub.endpoint)
        monkeypatch.setattr(
            "huggingface_hub.constants.HUGGINGFACE_CO_URL_TEMPLATE",
            hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        )
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
        monkeypatch.setattr("datasets.config.HF_HUB_OFFLINE", False)  # load_dataset reads from the fake
        monkeypatch.setattr("datasets.config.HF_ENDPOINT", hub.endpoint)
        monkeypatch.setattr(
            "datasets.config.HUB_DATASETS_URL", hub.endpoint + "/datasets/{repo_id}/resolve/{revision}/{path}"
        )
        monkeypatch.delenv("HF_TOKEN", raising=False)
        yield hub


def _card_checks(card: DatasetCard, rows: int) -> None:
    meta = card.data.to_dict()
    assert meta["tags"][0] == "synthetic" and "self-instruct" in meta["tags"]
    assert meta["task_categories"] == ["text-generation"] and meta["size_categories"] == ["n<1K"]
    assert meta["source_datasets"] == ["me/seed-tasks"] and meta["license"] and meta["language"] == ["en"]
    assert [c["config_name"] for c in meta["configs"]] == ["default", "rejected"]
    for section in (
        "## How it was made",
        "## Filtering",
        "## Size and lengths",
        "## Columns and lineage",
        "## Examples",
        "## Limitations",
        "## Training with TRL",
    ):
        assert section in card.text
    assert f"{rows} rows" in card.text


def test_local_layout_reads_back(tmp_path, run_dir):
    out, result = run_dir
    assert main(["push", str(out), "--local-dir", str(tmp_path / "repo")]) == 0
    data = load_dataset(str(tmp_path / "repo"))
    assert data["train"]["id"] == result.dataset["id"]
    assert load_dataset(str(tmp_path / "repo"), "rejected")["train"].num_rows == len(result.rejected)
    _card_checks(DatasetCard.load(tmp_path / "repo" / "README.md"), len(result.dataset))


def test_existing_metadata_is_merged_not_overwritten(tmp_path, run_dir):
    out, result = run_dir
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "README.md").write_text(
        "---\nlicense: mit\ntags:\n- my-tag\nannotations_creators:\n- machine-generated\n---\n# Mine\n"
    )
    write_repo(result.dataset, repo, card=DatasetCard.load(out / "README.md"), rejected=result.rejected)
    meta = DatasetCard.load(repo / "README.md").data.to_dict()
    assert meta["license"] == "mit" and meta["annotations_creators"] == ["machine-generated"]
    assert "my-tag" in meta["tags"] and "synthetic" in meta["tags"] and meta["configs"]


def _names(repo: dict) -> set[str]:
    """The repo's file names, a content digest after the shard number left out (``train-00000-of-00001``
    with or without ``-<digest>``)."""
    return {re.sub(r"(-of-\d{5})-[0-9a-z]+\.parquet$", r"\1.parquet", p) for p in repo["files"]}


def test_push_through_the_real_client(tmp_path, run_dir, fake_hub, caplog):
    out, result = run_dir
    caplog.set_level(logging.DEBUG)
    stdout, stderr = io.StringIO(), io.StringIO()
    with redirect_stdout(stdout), redirect_stderr(stderr):
        assert (
            main(
                [
                    "--log-level",
                    "DEBUG",
                    "push",
                    str(out),
                    "me/synthetic",
                    "--token",
                    WRITE_TOKEN,
                    "--private",
                ]
            )
            == 0
        )
    repo = fake_hub.repos["me/synthetic"]
    assert repo["type"] == "dataset" and repo["private"] is True
    assert {"README.md", "data/train-00000-of-00001.parquet"} <= _names(repo)
    assert any(p.startswith("rejected/") for p in repo["files"])
    assert len(repo["commits"]) == 1  # one push, one commit
    parquet = {p for p in repo["files"] if p.endswith(".parquet")}
    assert repo["lfs_paths"] == parquet and fake_hub.lfs_uploads == len(parquet)  # the data went by LFS
    cache = tmp_path / "datasets-cache"  # one cache for every load below: a later push must not read stale
    loaded = load_dataset("me/synthetic", split="train", token=WRITE_TOKEN, cache_dir=str(cache))
    assert loaded["id"] == result.dataset["id"] and loaded[0] == result.dataset[0]
    local = tmp_path / "downloaded"
    for path, data in repo["files"].items():
        (local / path).parent.mkdir(parents=True, exist_ok=True)
        (local / path).write_bytes(data)
    assert load_dataset(str(local))["train"]["id"] == result.dataset["id"]
    _card_checks(DatasetCard.load(local / "README.md"), len(result.dataset))
    everything = (
        stdout.getvalue()
        + stderr.getvalue()
        + caplog.text
        + "".join(d.decode("utf-8", "replace") for d in repo["files"].values())
    )
    assert WRITE_TOKEN not in everything and "Pushed" in stdout.getvalue()
    # a second push updates the same repo and keeps metadata the owner added in between
    readme = repo["files"]["README.md"].decode().replace("license: other", "license: apache-2.0")
    fake_hub.edit("me/synthetic", "README.md", readme.encode())
    assert len(repo["commits"]) == 2
    push_to_hub(
        result.dataset,
        "me/synthetic",
        card=DatasetCard.load(out / "README.md"),
        token=WRITE_TOKEN,
        shard_rows=2,
        rejected=result.rejected,
    )
    assert "license: apache-2.0" in repo["files"]["README.md"].decode()
    assert sorted(p for p in _names(repo) if p.startswith("data/")) == [
        f"data/train-0000{i}-of-00003.parquet" for i in range(3)
    ]
    assert len(repo["commits"]) == 3  # the owner's and one more
    # a third push of fewer rows, without rejected rows, leaves none of the earlier shards behind
    push_to_hub(
        result.dataset.select(range(2)),
        "me/synthetic",
        card=DatasetCard.load(out / "README.md"),
        token=WRITE_TOKEN,
    )
    assert sorted(p for p in _names(repo) if p != "README.md") == ["data/train-00000-of-00001.parquet"]
    assert "rejected" not in repo["files"]["README.md"].decode().split("---")[1]
    assert len(repo["commits"]) == 4
    again = load_dataset("me/synthetic", split="train", token=WRITE_TOKEN, cache_dir=str(cache))
    assert again["id"] == result.dataset["id"][:2]  # the latest push, through the same cache


@pytest.mark.parametrize(
    "token, repo, message",
    [
        (None, "me/x", "No Hugging Face token"),
        ("hf_wrong", "me/x", "refused (401)"),
        (READ_TOKEN, "me/x", "No permission to write me/x (403)"),
        (WRITE_TOKEN, "someone-else/x", "No permission to write someone-else/x (403)"),
    ],
)
def test_push_errors_are_one_line_and_never_show_the_token(
    run_dir, fake_hub, token, repo, message, monkeypatch
):
    out, result = run_dir
    monkeypatch.setattr("huggingface_hub.get_token", lambda: None)
    with pytest.raises(HubPushError) as info:
        push_to_hub(result.dataset, repo, token=token)
    text = str(info.value)
    assert message in text and "\n" not in text
    assert (token or "hf_") not in text or token is None


def test_push_cli_needs_a_run_folder(tmp_path, capsys):
    assert main(["push", str(tmp_path), "me/x"]) == 2
    assert "not an hf-synth output folder" in capsys.readouterr().err


def test_new_only_refuses_an_existing_repo(run_dir, fake_hub, capsys):
    out, _ = run_dir
    assert main(["push", str(out), "me/taken", "--token", WRITE_TOKEN]) == 0
    assert main(["push", str(out), "me/taken", "--token", WRITE_TOKEN, "--new-only"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and "me/taken already exists (409)" in err[0] and WRITE_TOKEN not in err[0]


def _tables(markdown: str) -> list[list[str]]:
    """The tables of a Markdown text as a renderer sees them: per table, the text of each body row."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(markdown)
    tables, rows, in_body, cells = [], [], False, []
    for token in tokens:
        if token.type == "tbody_open":
            in_body, rows = True, []
        elif token.type == "tbody_close":
            in_body = False
            tables.append(rows)
        elif in_body and token.type == "tr_close":
            rows.append(" | ".join(cells))
            cells = []
        elif in_body and token.type == "inline":
            cells.append(token.content)
    return tables


def test_card_tables_render_as_tables(run_dir):
    out, result = run_dir
    card = DatasetCard.load(out / "README.md")
    tables = _tables(card.text)
    dropped = result.summary.to_dict()["dropped"]
    assert [len(t) for t in tables[:2]] == [len(dropped), 3]  # reasons; instruction/input/output lengths
    assert {row.split(" | ")[0].strip("`") for row in tables[0]} == set(dropped)
    assert "\n\n| " not in card.text.split("| reason |")[1].split("##")[0].strip()  # no blank line inside


def test_every_output_kind_gets_a_card_with_its_history(tmp_path, run_dir):
    from hf_synth.cards import step_card

    out, result = run_dir
    card = step_card(
        result.dataset.select(range(2)),
        method="filter",
        tags=["filtered"],
        steps=["Rows were scored and filtered."],
        input_source=out,
        rejected=4,
        dropped={"rouge_l_novelty": 3, "length": 1},
        settings={"rouge_l_novelty.threshold": 0.7},
    )
    assert "### The input, as its own card tells it" in card.text and "Few-shot prompts" in card.text
    tables = _tables(card.text)
    assert ["`rouge_l_novelty.threshold` | `0.7`"] in tables
    assert ["`rouge_l_novelty` | 3", "`length` | 1"] in tables
    assert "No model\ngenerated text in this step" in card.text
    assert card.data.to_dict()["tags"] == ["synthetic", "filtered", "hf-synth"]


def test_local_push_over_an_earlier_push_replaces_data_and_generated_metadata(tmp_path, run_dir):
    out, result = run_dir
    repo = tmp_path / "repo"
    assert main(["push", str(out), "--local-dir", str(repo)]) == 0
    assert load_dataset(str(repo))["train"]["id"] == result.dataset["id"]
    # the owner adds a field of their own; a later push must keep it
    card = DatasetCard.load(repo / "README.md")
    card.data.license = "mit"
    card.data.dataset_info = {"splits": [{"name": "train", "num_examples": len(result.dataset)}]}
    card.save(str(repo / "README.md"))
    other = tmp_path / "other"
    smaller = result.dataset.select(range(2))
    save_run(other, smaller, None)
    (other / "README.md").write_text((out / "README.md").read_text())
    assert main(["push", str(other), "--local-dir", str(repo)]) == 0
    assert load_dataset(str(repo))["train"]["id"] == smaller["id"]  # the new rows, not a cached old copy
    meta = DatasetCard.load(repo / "README.md").data.to_dict()
    info = meta["dataset_info"]  # the owner's stale dataset_info is replaced by this push's
    assert meta["license"] == "mit" and [s["num_examples"] for s in info["splits"]] == [2]
    assert [c["config_name"] for c in meta["configs"]] == ["default"]  # no rejected rows any more
    assert not (repo / "rejected").exists()
    assert load_dataset(str(repo), download_mode="force_redownload")["train"].num_rows == 2


@pytest.mark.parametrize(
    "judge, enforced, says",
    [
        ("judge-model", True, "by the verdict of the judge `judge-model`"),
        ("judge-model", False, "failed its self-check, so its verdicts were recorded but eliminated nothing"),
        ("", False, "No judge was used."),
    ],
)
def test_evol_card_says_what_really_eliminated_rows(judge, enforced, says):
    from hf_synth.cards import evol_instruct_card

    rows = Dataset.from_list([{"instruction": "Explain tides.", "input": "", "output": "The moon pulls."}])
    card = evol_instruct_card(
        rows,
        {
            "rounds": 1,
            "evolved": 2,
            "eliminated": 1,
            "reasons": {"no_new_information": 1},
            "judge_enforced": enforced,
        },
        model="m",
        judge_model=judge,
        response_model="m",
        prompt_templates=[],
        generation_params={},
        source="seeds",
    )
    assert says in card.text
    assert "and the judge's verdict" not in card.text  # the old wording, true only with an enforced judge
