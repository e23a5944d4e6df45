"""Reading seed datasets from files, folders or the Hub, and writing run outputs."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict, load_dataset, load_from_disk

from .input_files import FILE_LOADERS as _FILE_LOADERS
from .input_files import check_file, looks_local
from .run_folder import RunFolder

logger = logging.getLogger(__name__)

EXAMPLE_SEEDS = Path(__file__).parent / "data" / "example_seeds.jsonl"


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


def load_seed_dataset(
    source: str | Path | None = None, *, split: str | None = None, allow_empty: bool = False
) -> Dataset:
    """Load a dataset from a JSONL/JSON/CSV/Parquet/text file, a ``save_to_disk`` folder, the output folder
    of an hf-synth run, a local dataset folder, or a Hub dataset id. ``None`` gives hf-synth's own example
    seeds. A dataset with no rows is refused, except a ``save_to_disk`` folder or run folder with
    ``allow_empty`` (the input of a step whose empty result is saved, such as ``filter``)."""
    if source is None:
        source = EXAMPLE_SEEDS
    path = Path(source).expanduser()
    if path.is_file():
        check_file(path)
        builder = _FILE_LOADERS[path.suffix.lower()]
        try:
            return _not_empty(load_dataset(builder, data_files=str(path), split="train"), path)
        except ValueError as err:
            if "corresponds to no data" in str(err):  # a CSV with a header only
                raise ValueError(f"{path} holds no rows; pass a dataset with at least one row.") from None
            raise
    if path.is_dir():
        if RunFolder(path).is_run():  # the output folder of an hf-synth run
            path = RunFolder(path).dataset_dir
        if (path / "state.json").is_file() or (path / "dataset_dict.json").is_file():
            saved = _pick_split(load_from_disk(str(path)), split, str(path))
            return saved if allow_empty else _not_empty(saved, path)
        if not any(p.is_file() for p in path.rglob("*")):
            raise ValueError(f"{path} is an empty folder; pass a dataset file, folder or Hub id.")
        return _not_empty(_pick_split(load_dataset(str(path)), split, str(path)), path)
    text = str(source)
    if looks_local(text):
        raise FileNotFoundError(f"Seed file or folder {text!r} does not exist.")
    check_dataset_source(text)
    logger.info("Loading %s from the Hugging Face Hub", text)
    return _pick_split(load_dataset(text), split, text)


def check_dataset_source(source: str) -> None:
    """Refuse a Hub dataset id that cannot load, before anything runs: with the Hub offline
    (``HF_HUB_OFFLINE=1``), an id that is not a local path and that datasets' own cache
    (``HF_DATASETS_CACHE``, where ``load_dataset`` keeps what it loaded) does not hold. Raises
    ``FileNotFoundError`` naming the id and the fix; a local path, or any id with the Hub reachable, is left
    to the loader."""
    from datasets import config

    if Path(source).expanduser().exists() or not config.HF_HUB_OFFLINE:
        return
    # load_dataset's offline fallback reads <cache>/<namespace>___<name>/<config>/<version>/<hash>
    cached = Path(config.HF_DATASETS_CACHE).expanduser() / source.replace("/", "___")
    if cached.is_dir() and any(p.is_dir() for p in cached.glob("*/*/*")):
        return
    raise FileNotFoundError(
        f"Dataset {source!r} is not a local file or folder and not in the datasets cache "
        f"({config.HF_DATASETS_CACHE}), and the Hub is offline (HF_HUB_OFFLINE=1): load it once with the Hub "
        f"reachable (HF_HUB_OFFLINE=0 python -c \"import datasets; datasets.load_dataset('{source}')\"), "
        "or pass a local file or folder instead."
    )


def save_run(
    output_dir: str | Path,
    dataset: Dataset,
    rejected: Dataset | None = None,
    *,
    summary: dict[str, Any] | None = None,
    config: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write a run's results: ``dataset/`` (``save_to_disk``), ``data.jsonl``, ``rejected.jsonl``,
    ``summary.json`` and ``config.yaml`` (see :meth:`hf_synth.run_folder.RunFolder.save`, which also
    writes the card). Returns the written paths by name.

    A result with no rows is saved like any other, with a warning: every step follows this rule, and
    publishing such a result is refused unless asked for (``hf-synth push --allow-empty``,
    ``push_to_hub(..., allow_empty=True)``)."""
    return RunFolder(output_dir).save(dataset, rejected, summary=summary, config=config)
