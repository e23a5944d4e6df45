"""The output folder of a run, the one place that knows its layout:

    OUTPUT/dataset/          the kept rows (``save_to_disk``; ``load_from_disk`` reads it)
    OUTPUT/data.jsonl        the same rows as JSON lines
    OUTPUT/rejected.jsonl    the dropped rows, with why
    OUTPUT/summary.json      the run's figures (counts per reason, tokens, wall time)
    OUTPUT/config.yaml       the configuration that made it (``engine:`` and the step's section)
    OUTPUT/README.md         the dataset card
    OUTPUT/review/           a human review's session and decisions (``hf-synth review``)
    OUTPUT/checkpoints/      what a re-run of the same configuration reuses

Every part is written atomically (:mod:`hf_synth.atomic`), and every command that reads a run (review,
apply, push, show, report, filter, a later step's input) reads it through :class:`RunFolder`. To change the
layout, change this module."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from .atomic import atomic_file, atomic_folder, atomic_write_text

logger = logging.getLogger(__name__)

DATASET_DIR = "dataset"
JSONL_FILE = "data.jsonl"
REJECTED_FILE = "rejected.jsonl"
SUMMARY_FILE = "summary.json"
CONFIG_FILE = "config.yaml"
CARD_FILE = "README.md"
REVIEW_DIR = "review"
CHECKPOINTS_DIR = "checkpoints"


def save_dataset(dataset, path: str | Path) -> None:
    """``save_to_disk`` that also works for a dataset with no rows (datasets writes zero shards for those,
    which ``load_from_disk`` cannot read back; one empty shard can be), written atomically."""
    with atomic_folder(path) as tmp:
        dataset.save_to_disk(str(tmp), num_shards=1 if len(dataset) == 0 else None)


def write_jsonl(path: str | Path, rows) -> Path:
    """Write a ``Dataset`` (``to_json``) or a list of dicts as JSON lines, atomically."""
    with atomic_file(path) as tmp:
        if isinstance(rows, list):
            with open(tmp, "w", encoding="utf-8") as handle:
                for row in rows:
                    handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        else:
            rows.to_json(str(tmp), lines=True, force_ascii=False)
    return Path(path)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSON lines file (none when it is missing); a broken line is an error naming it."""
    rows = []
    if path.is_file():
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as err:
                        raise ValueError(f"{path} line {number}: not valid JSON ({err.msg})") from None
    return rows


class RunFolder:
    """The output folder of an hf-synth run: write and read each part (see the module docstring).

    Args:
        path: The folder (``--output`` of the run); created when something is written.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    # ------------------------------------------------------------------ the parts
    @property
    def dataset_dir(self) -> Path:
        return self.path / DATASET_DIR

    @property
    def jsonl_file(self) -> Path:
        return self.path / JSONL_FILE

    @property
    def rejected_file(self) -> Path:
        return self.path / REJECTED_FILE

    @property
    def summary_file(self) -> Path:
        return self.path / SUMMARY_FILE

    @property
    def config_file(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def card_file(self) -> Path:
        return self.path / CARD_FILE

    @property
    def review_dir(self) -> Path:
        return self.path / REVIEW_DIR

    @property
    def checkpoints_dir(self) -> Path:
        return self.path / CHECKPOINTS_DIR

    def is_run(self) -> bool:
        """Whether the folder holds a run's ``dataset/`` (``save_to_disk``)."""
        return (self.dataset_dir / "state.json").is_file()

    # ------------------------------------------------------------------ writing
    def save(
        self,
        dataset,
        rejected=None,
        *,
        summary: dict[str, Any] | None = None,
        config: dict[str, Any] | str | None = None,
        card=None,
    ) -> dict[str, Path]:
        """Write ``dataset/``, ``data.jsonl`` and, when given, ``rejected.jsonl`` (a ``Dataset`` or a list
        of rows), ``summary.json``, ``config.yaml`` (a dict, or the text of another run's) and the card
        (a ``DatasetCard``). Returns the written paths by name (``dataset``, ``jsonl``, ``rejected``,
        ``summary``, ``config``, ``card``).

        A result with no rows is saved like any other, with a warning: every step follows this rule, and
        publishing such a result is refused unless asked for (``hf-synth push --allow-empty``,
        ``push_to_hub(..., allow_empty=True)``)."""
        from .progress import datasets_bars_off_while

        self.path.mkdir(parents=True, exist_ok=True)
        if len(dataset) == 0:
            dropped = "nothing was kept"
            if rejected is not None and len(rejected):
                dropped = f"all {len(rejected)} rows were dropped, see rejected.jsonl"
            logger.warning(
                "The result saved to %s holds no rows (%s); pushing it needs --allow-empty (Python: "
                "allow_empty=True).",
                self.path,
                dropped,
            )
        paths = {"dataset": self.dataset_dir, "jsonl": self.jsonl_file}
        with datasets_bars_off_while():
            save_dataset(dataset, self.dataset_dir)
            write_jsonl(self.jsonl_file, dataset)
            if rejected is not None:
                paths["rejected"] = write_jsonl(self.rejected_file, rejected)
        if summary is not None:
            paths["summary"] = self.write_summary(summary)
        if config is not None:
            paths["config"] = self.write_config(config)
        if card is not None:
            paths["card"] = self.write_card(card)
        return paths

    def write_summary(self, summary: dict[str, Any]) -> Path:
        return atomic_write_text(self.summary_file, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")

    def write_config(self, config: dict[str, Any] | str) -> Path:
        import yaml

        text = (
            config if isinstance(config, str) else yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
        )
        return atomic_write_text(self.config_file, text)

    def write_card(self, card) -> Path:
        """Write a ``huggingface_hub.DatasetCard`` as ``README.md``."""
        return atomic_write_text(self.card_file, str(card))

    # ------------------------------------------------------------------ reading
    def require_run(self) -> RunFolder:
        """This folder, or an error when it holds no run's ``dataset/``."""
        if not self.is_run():
            raise FileNotFoundError(
                f"{self.path} is not an hf-synth output folder (no dataset/ inside); pass a run's --output."
            )
        return self

    def read_dataset(self, *, keep_in_memory: bool = False):
        """The kept rows from ``dataset/`` (see :meth:`require_run`)."""
        from datasets import load_from_disk

        return load_from_disk(str(self.require_run().dataset_dir), keep_in_memory=keep_in_memory)

    def read_rows(self):
        """The kept rows: ``dataset/``, else ``data.jsonl`` (a folder written by hand), with a clear error."""
        from datasets import Dataset, load_from_disk

        if not self.path.is_dir():
            raise ValueError(f"{self.path} is not a folder; pass the --output folder of an hf-synth run.")
        if self.is_run():
            return load_from_disk(str(self.dataset_dir))
        if self.jsonl_file.is_file():
            return Dataset.from_list(read_jsonl(self.jsonl_file))
        raise ValueError(
            f"{self.path} holds no dataset/ folder or data.jsonl; pass the --output folder of an hf-synth run "
            "(or write your data there with `hf-synth filter --input FILE --config ... --output DIR`)."
        )

    def read_rejected(self):
        """The dropped rows as a ``Dataset``, or None when the run wrote none."""
        if not (self.rejected_file.is_file() and self.rejected_file.stat().st_size):
            return None
        from datasets import load_dataset

        return load_dataset("json", data_files=str(self.rejected_file), split="train")

    def rejected_rows(self) -> list[dict[str, Any]]:
        """The dropped rows as plain rows (their columns may differ between stages)."""
        return read_jsonl(self.rejected_file)

    def read_summary(self) -> dict[str, Any]:
        """``summary.json``, or ``{}`` when the run has none."""
        if not self.summary_file.is_file():
            return {}
        return json.loads(self.summary_file.read_text(encoding="utf-8"))

    def read_config_text(self) -> str | None:
        """``config.yaml`` as written, or None."""
        return self.config_file.read_text(encoding="utf-8") if self.config_file.is_file() else None

    def read_card(self):
        """The dataset card (``huggingface_hub.DatasetCard``), or None when the folder has none."""
        if not self.card_file.is_file():
            return None
        from huggingface_hub import DatasetCard

        return DatasetCard.load(self.card_file)


def dataset_folder(path: str | Path) -> Path:
    """The ``save_to_disk`` folder of ``path``: a run folder's ``dataset/``, else ``path`` itself."""
    run = RunFolder(path)
    return run.dataset_dir if run.dataset_dir.is_dir() else run.path
