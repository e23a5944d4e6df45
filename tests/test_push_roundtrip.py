"""A push, read back as a user reads it: ``load_dataset(folder)`` returns this push's rows when the folder was
pushed before with other columns, or when another folder of the same name was, with a fresh datasets cache
and with a warm one (the user's default cache, kept between loads). Generated card metadata is replaced on
every push, the owner's is kept. An empty result is saved with a warning and refused by push unless asked."""

from __future__ import annotations

import ast
import json
import logging
from pathlib import Path

import pytest
from datasets import Dataset, load_dataset, load_from_disk
from huggingface_hub import DatasetCard

from hf_synth.cards import GENERATED_TAGS, evol_instruct_card, self_instruct_card
from hf_synth.cli import main
from hf_synth.hub import push_to_hub, write_repo
from hf_synth.io import save_run

from .review_runs import evol_instruct_run, self_instruct_run

SELF_INSTRUCT_IDS = [f"si-{i:03d}" for i in range(4)]
EVOL_IDS = ["r-r1", "r-r2", "q-r1"]


def _with_card(run: Path, card: DatasetCard) -> Path:
    card.save(str(run / "README.md"))
    return run


def _self_instruct(folder: Path) -> Path:
    run = self_instruct_run(folder, n=4)
    dataset = load_from_disk(str(run / "dataset"))
    card = self_instruct_card(
        dataset,
        {"generated": 7, "rejected": 3, "rounds": 2},
        model="scripted-teacher",
        prompt_templates=["self_instruct/instructions.jinja"],
        generation_params={"temperature": 0.7},
        seeds="tests' seeds",
        source_datasets=["me/seed-tasks"],
    )
    return _with_card(run, card)


def _evol_instruct(folder: Path) -> Path:
    run = evol_instruct_run(folder)
    dataset = load_from_disk(str(run / "dataset"))
    card = evol_instruct_card(
        dataset,
        {"evolved": 4, "eliminated": 1, "rounds": 2},
        model="scripted-teacher",
        judge_model="",
        response_model="scripted-teacher",
        prompt_templates=["evol_instruct/deepening.jinja"],
        generation_params={"temperature": 0.7},
        source="tests' instructions",
    )
    return _with_card(run, card)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("runs")
    return _self_instruct(root / "self-instruct"), _evol_instruct(root / "evol-instruct")


def _push(run: Path, repo: Path, *extra: str) -> None:
    assert main(["push", str(run), "--local-dir", str(repo), *extra]) == 0


def _load(repo: Path, cache: Path | None, config: str | None = None, **kwargs) -> Dataset:
    """``load_dataset(repo)`` with ``cache`` as the datasets cache (None: the session's, from conftest)."""
    if cache is not None:
        kwargs["cache_dir"] = str(cache)
    return load_dataset(str(repo), config, split="train", **kwargs)


def _check_evol(repo: Path, cache: Path | None) -> None:
    data = _load(repo, cache)
    assert (
        data["id"] == EVOL_IDS and "evolution_op" in data.column_names and "source" not in data.column_names
    )
    assert _load(repo, cache, "rejected")["id"] == ["z-r1"]
    # rebuilding the cache entry reads the same files: no CastError, no NonMatchingSplitsSizesError
    assert _load(repo, cache, download_mode="force_redownload")["id"] == EVOL_IDS
    assert _load(repo, cache, "rejected", download_mode="force_redownload")["id"] == ["z-r1"]
    # the card's dataset_info is this push's (datasets checks the row counts against the files)
    infos = DatasetCard.load(repo / "README.md").data.to_dict()["dataset_info"]
    assert {i["config_name"]: i["splits"][0]["num_examples"] for i in infos} == {"default": 3, "rejected": 1}
    assert [f["name"] for f in infos[0]["features"]] == data.column_names


@pytest.mark.parametrize("cache", ["fresh", "warm"])
def test_one_folder_pushed_twice_with_other_columns_loads_the_second_push(tmp_path, runs, cache):
    self_instruct, evol = runs
    repo, warm = tmp_path / "repo", tmp_path / "cache"
    _push(self_instruct, repo)
    assert _load(repo, warm)["id"] == SELF_INSTRUCT_IDS
    assert len(_load(repo, warm, "rejected")) == 3
    _push(evol, repo)
    _check_evol(repo, warm if cache == "warm" else tmp_path / "fresh-cache")
    assert len(list((repo / "data").iterdir())) == 1 and len(list((repo / "rejected").iterdir())) == 1
    # and back again: the first run's rows, not the second's nor a stale copy of either
    _push(self_instruct, repo)
    assert _load(repo, warm)["id"] == SELF_INSTRUCT_IDS


@pytest.mark.parametrize("cache", ["fresh", "warm"])
def test_two_folders_of_the_same_name_load_their_own_rows(tmp_path, runs, cache):
    self_instruct, evol = runs
    first, second, warm = tmp_path / "a" / "repo", tmp_path / "b" / "repo", tmp_path / "cache"
    _push(self_instruct, first)
    _push(evol, second)
    assert _load(first, warm)["id"] == SELF_INSTRUCT_IDS
    _check_evol(second, warm if cache == "warm" else tmp_path / "fresh-cache")
    assert _load(first, warm)["id"] == SELF_INSTRUCT_IDS


def test_rows_of_the_same_shape_and_size_are_told_apart(tmp_path):
    """Two pushes whose dataset_info is the same (columns, row count, bytes): only the rows differ."""
    repo, warm = tmp_path / "repo", tmp_path / "cache"
    for letter in "AB":
        rows = [{"id": f"{letter}-{i}", "instruction": f"Task {letter}{i}", "output": "x"} for i in range(3)]
        save_run(tmp_path / letter, Dataset.from_list(rows))
        _push(tmp_path / letter, repo)
        assert _load(repo, warm)["id"] == [f"{letter}-{i}" for i in range(3)]


def test_shards_share_one_digest_and_the_card_counts_them_all(tmp_path):
    rows = [{"id": f"r-{i}", "instruction": f"Task {i}", "output": "x" * i} for i in range(5)]
    write_repo(Dataset.from_list(rows), tmp_path / "repo", shard_rows=2)
    names = sorted(p.name for p in (tmp_path / "repo" / "data").iterdir())
    assert [n.rsplit("-", 1)[0] for n in names] == [f"train-0000{i}-of-00003" for i in range(3)]
    assert len({n.rsplit("-", 1)[1] for n in names}) == 1  # one digest for the split
    assert _load(tmp_path / "repo", tmp_path / "cache")["id"] == [r["id"] for r in rows]
    info = DatasetCard.load(tmp_path / "repo" / "README.md").data.to_dict()["dataset_info"]
    assert info["splits"][0]["num_examples"] == 5 and info["splits"][0]["num_bytes"] > 0
    assert info["download_size"] == sum(p.stat().st_size for p in (tmp_path / "repo" / "data").iterdir())


def test_the_session_cache_twice(tmp_path, runs):
    """The cache conftest gives every test (shared by the whole session, as a user's default cache is)."""
    self_instruct, evol = runs
    repo = tmp_path / "repo"
    _push(self_instruct, repo)
    assert _load(repo, None)["id"] == SELF_INSTRUCT_IDS
    _push(evol, repo)
    _check_evol(repo, None)


def test_a_later_push_replaces_generated_metadata_and_keeps_the_owners(tmp_path, runs):
    self_instruct, evol = runs
    repo = tmp_path / "repo"
    _push(self_instruct, repo)
    card = DatasetCard.load(repo / "README.md")
    assert "self-instruct" in card.data.tags
    card.data.license = "mit"
    card.data.tags = [*card.data.tags, "my-tag"]
    card.data.annotations_creators = ["machine-generated"]
    card.save(str(repo / "README.md"))
    _push(evol, repo)
    meta = DatasetCard.load(repo / "README.md").data.to_dict()
    assert meta["tags"] == ["synthetic", "evol-instruct", "hf-synth", "my-tag"]  # no "self-instruct"
    assert meta["license"] == "mit" and meta["annotations_creators"] == ["machine-generated"]
    assert meta["pretty_name"] == "hf-synth Evol-Instruct dataset"
    infos = {info["config_name"]: info for info in meta["dataset_info"]}
    assert [s["num_examples"] for s in infos["default"]["splits"]] == [3]
    assert [s["num_examples"] for s in infos["rejected"]["splits"]] == [1]
    assert "evolution_op" in [f["name"] for f in infos["default"]["features"]]
    assert "source" not in [f["name"] for f in infos["default"]["features"]]
    for config in meta["configs"]:  # each config names the files of this push, and they are there
        (pattern,) = [files["path"] for files in config["data_files"]]
        assert len(list(repo.glob(pattern))) == 1
    assert "Name a tropical fruit" in DatasetCard.load(repo / "README.md").text


def _literal_tags(tree: ast.AST) -> set[str]:
    tags = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "tags" and isinstance(node.value, ast.List):
            tags.update(e.value for e in node.value.elts if isinstance(e, ast.Constant))
    return tags


def test_every_tag_a_card_is_given_is_known_as_generated():
    """A push replaces hf-synth's own tags; a tag missing from GENERATED_TAGS would stick after the next
    push of another kind. Collects every literal ``tags=[...]`` in the package."""
    package = Path(__file__).resolve().parent.parent / "hf_synth"
    used = set()
    for source in package.rglob("*.py"):
        used |= _literal_tags(ast.parse(source.read_text(encoding="utf-8")))
    assert {"self-instruct", "evol-instruct", "filtered", "synthetic"} <= used
    assert used <= GENERATED_TAGS, sorted(used - GENERATED_TAGS)


def test_hub_push_replaces_earlier_data_files_in_the_same_commit(tmp_path, runs, monkeypatch):
    from .hub_server import WRITE_TOKEN, FakeHub

    self_instruct, evol = runs
    with FakeHub() as hub:
        monkeypatch.setattr("huggingface_hub.constants.ENDPOINT", hub.endpoint)
        monkeypatch.setattr(
            "huggingface_hub.constants.HUGGINGFACE_CO_URL_TEMPLATE",
            hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}",
        )
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
        warm, pushed = tmp_path / "cache", []
        for number, run in enumerate((self_instruct, evol)):
            assert main(["push", str(run), "me/synthetic", "--token", WRITE_TOKEN]) == 0
            files = dict(hub.repos["me/synthetic"]["files"])
            pushed.append(sorted(p for p in files if p != "README.md"))
            # a copy of the repo as a user downloads it, in a folder named like the repo each time
            copy = tmp_path / f"download-{number}" / "synthetic"
            for path, data in files.items():
                (copy / path).parent.mkdir(parents=True, exist_ok=True)
                (copy / path).write_bytes(data)
    # one data file and one rejected file each time: the second commit deleted the first's
    assert [[p.split("/")[0] for p in files] for files in pushed] == [["data", "rejected"]] * 2
    assert not set(pushed[0]) & set(pushed[1])
    assert _load(tmp_path / "download-0" / "synthetic", warm)["id"] == SELF_INSTRUCT_IDS
    _check_evol(tmp_path / "download-1" / "synthetic", warm)


# --- empty results: saved with a warning; push refuses them unless asked; filter follows the same rule ---


def _empty_evol_run(folder: Path) -> Path:
    """An Evol-Instruct run that kept none of its 3 rows."""
    everything = load_from_disk(str(evol_instruct_run(folder.parent / f"{folder.name}-all") / "dataset"))
    empty = everything.select([])
    rejected = everything.map(lambda row: {"eliminated": True, "elimination_reasons": ["refusal"]})
    run = folder
    save_run(run, empty, rejected, summary={"evolved": 3, "eliminated": 3, "kept": 0})
    card = evol_instruct_card(
        empty,
        {"evolved": 3, "eliminated": 3, "reasons": {"refusal": 3}},
        model="scripted-teacher",
        judge_model="",
        response_model="scripted-teacher",
        prompt_templates=[],
        generation_params={},
        source="tests' instructions",
    )
    return _with_card(run, card)


def test_an_empty_result_is_saved_with_a_warning_and_its_card_says_so(tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="hf_synth")
    run = _empty_evol_run(tmp_path / "run")
    assert len(load_from_disk(str(run / "dataset"))) == 0
    assert (run / "data.jsonl").read_text() == ""
    assert json.loads((run / "summary.json").read_text())["kept"] == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("holds no rows" in w and "all 3 rows were dropped" in w for w in warnings), warnings
    text = DatasetCard.load(run / "README.md").text
    examples = text.split("## Examples")[1].split("## ")[0]
    assert "No rows to show: none of the 3 candidate rows was kept" in examples


def test_push_refuses_an_empty_run_in_one_line_unless_allowed(tmp_path, capsys):
    run = _empty_evol_run(tmp_path / "run")
    capsys.readouterr()
    repo = tmp_path / "repo"
    assert main(["push", str(run), "--local-dir", str(repo)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("hf-synth: error: ") and "holds no rows" in err
    assert "--allow-empty" in err and "allow_empty=True" not in err  # the CLI speaks CLI
    assert not repo.exists()
    assert main(["push", str(run), "me/x", "--token", "hf_unused"]) == 2  # refused before the Hub is asked
    assert "--allow-empty" in capsys.readouterr().err
    assert main(["push", str(run), "--local-dir", str(repo), "--allow-empty"]) == 0
    assert len(list((repo / "data").glob("*.parquet"))) == 1
    assert "No rows to show" in DatasetCard.load(repo / "README.md").text


def test_the_python_push_api_refuses_an_empty_dataset_unless_allowed(tmp_path):
    empty = Dataset.from_dict({"instruction": [], "output": []})
    with pytest.raises(ValueError, match=r"holds no rows.*allow_empty=True"):
        write_repo(empty, tmp_path / "repo")
    assert not (tmp_path / "repo").exists()
    with pytest.raises(ValueError, match=r"allow_empty=True"):
        push_to_hub(empty, "me/x", token="hf_unused")  # before any request
    write_repo(empty, tmp_path / "repo", allow_empty=True)
    assert (tmp_path / "repo" / "README.md").is_file()


def test_filter_on_an_empty_run_saves_an_empty_result_that_push_refuses(tmp_path, capsys, caplog):
    caplog.set_level(logging.WARNING, logger="hf_synth")
    run = _empty_evol_run(tmp_path / "run")
    config = tmp_path / "filters.yaml"
    config.write_text("filters:\n  - {name: length, column: output, min_words: 1}\n")
    caplog.clear()
    out = tmp_path / "filtered"
    assert main(["filter", "--input", str(run), "--config", str(config), "--output", str(out)]) == 0
    assert "kept 0, dropped 0" in capsys.readouterr().out
    assert len(load_from_disk(str(out / "dataset"))) == 0
    assert any("holds no rows" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "No rows to show: the dataset has no rows" in DatasetCard.load(out / "README.md").text
    assert main(["push", str(out), "--local-dir", str(tmp_path / "repo")]) == 2
    assert "--allow-empty" in capsys.readouterr().err
