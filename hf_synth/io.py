"""Reading seed datasets from files, folders or the Hub, and writing run outputs."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import yaml
from datasets import Dataset, DatasetDict, load_dataset, load_from_disk

from .checkpoint import save_dataset

logger = logging.getLogger(__name__)

EXAMPLE_SEEDS = Path(__file__).parent / "data" / "example_seeds.jsonl"
_FILE_LOADERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "text"}


def _pick_split(data: Dataset | DatasetDict, split: str | None, source: str) -> Dataset:
    if isinstance(data, Dataset):
        return data
    if split is None:
        split = "train" if "train" in data else (next(iter(data)) if len(data) == 1 else None)
    if split not in data:
        raise ValueError(f"{source} has splits {', '.join(data)}; choose one with --split (split=).")
    return data[split]


def _not_empty(dataset: Dataset, source: Path) -> Dataset:
    if len(dataset) == 0:
        raise ValueError(f"{source} holds no rows; pass a dataset with at least one row.")
    return dataset


def check_utf8(path: Path) -> None:
    """Raise ``ValueError`` naming the first line that is not valid UTF-8, with the fix."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as err:
                raise ValueError(
                    f"{path} line {number} is not valid UTF-8 (byte 0x{line[err.start]:02x} at column "
                    f"{err.start + 1}); re-encode the file as UTF-8, e.g. iconv -f latin1 -t utf-8."
                ) from None


def check_json_file(path: Path) -> None:
    """Raise ``ValueError`` naming the first line (1-based, as an editor shows it) of a JSONL/JSON file that
    does not parse, or that holds no object, with the fix; and for an empty file."""
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise ValueError(f"{path} is empty; put one JSON object per line in it (or pass another file).")
    if path.suffix.lower() == ".json" and text.lstrip()[:1] in "[{":
        try:
            json.loads(text)
            return
        except json.JSONDecodeError as err:
            if text.lstrip()[:1] == "[":
                raise ValueError(
                    f"{path} line {err.lineno} column {err.colno}: not valid JSON ({err.msg}); fix that line."
                ) from None
            # a .json file may also be JSON Lines: check it line by line
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(
                f"{path} line {number} column {err.colno}: not valid JSON ({err.msg}); fix that line "
                "(each line holds one JSON object)."
            ) from None
        if not isinstance(value, dict):
            raise ValueError(
                f"{path} line {number}: a JSON {type(value).__name__}, not an object; fix that line (each "
                'line holds one object such as {"instruction": "..."}).'
            )


def load_seed_dataset(source: str | Path | None = None, *, split: str | None = None) -> Dataset:
    """Load a dataset from a JSONL/JSON/CSV/Parquet/text file, a ``save_to_disk`` folder, the output folder
    of an hf-synth run, a local dataset folder, or a Hub dataset id. ``None`` gives hf-synth's own example
    seeds."""
    if source is None:
        source = EXAMPLE_SEEDS
    path = Path(source).expanduser()
    if path.is_file():
        builder = _FILE_LOADERS.get(path.suffix.lower())
        if builder is None:
            raise ValueError(f"Cannot read {path}: use a .jsonl, .json, .csv, .parquet or .txt file.")
        if path.stat().st_size == 0:
            raise ValueError(f"{path} is empty (0 bytes); pass a file with rows in it.")
        if builder != "parquet":
            check_utf8(path)
        if builder == "json":
            check_json_file(path)
        try:
            return _not_empty(load_dataset(builder, data_files=str(path), split="train"), path)
        except ValueError as err:
            if "corresponds to no data" in str(err):  # a CSV with a header only
                raise ValueError(f"{path} holds no rows; pass a dataset with at least one row.") from None
            raise
    if path.is_dir():
        if (path / "dataset" / "state.json").is_file():  # the output folder of an hf-synth run
            path = path / "dataset"
        if (path / "state.json").is_file() or (path / "dataset_dict.json").is_file():
            return _not_empty(_pick_split(load_from_disk(str(path)), split, str(path)), path)
        if not any(p.is_file() for p in path.rglob("*")):
            raise ValueError(f"{path} is an empty folder; pass a dataset file, folder or Hub id.")
        return _not_empty(_pick_split(load_dataset(str(path)), split, str(path)), path)
    text = str(source)
    if text.startswith((".", "/", "~")) or text.endswith(tuple(_FILE_LOADERS)):
        raise FileNotFoundError(f"Seed file or folder {text!r} does not exist.")
    logger.info("Loading %s from the Hugging Face Hub", text)
    return _pick_split(load_dataset(text), split, text)


def save_run(
    output_dir: str | Path,
    dataset: Dataset,
    rejected: Dataset | None = None,
    *,
    summary: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write a run's results: ``dataset/`` (``save_to_disk``), ``data.jsonl``, ``rejected.jsonl``,
    ``summary.json`` and ``config.yaml``. Returns the written paths by name."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"dataset": out / "dataset", "jsonl": out / "data.jsonl"}
    save_dataset(dataset, paths["dataset"])
    dataset.to_json(str(paths["jsonl"]), lines=True, force_ascii=False)
    if rejected is not None:
        paths["rejected"] = out / "rejected.jsonl"
        rejected.to_json(str(paths["rejected"]), lines=True, force_ascii=False)
    if summary is not None:
        paths["summary"] = out / "summary.json"
        paths["summary"].write_text(
            json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
    if config is not None:
        paths["config"] = out / "config.yaml"
        paths["config"].write_text(
            yaml.safe_dump(config, sort_keys=False, allow_unicode=True), encoding="utf-8"
        )
    return paths
