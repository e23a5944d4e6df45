"""Checks of local input files that need neither datasets nor torch, so the command line refuses a bad
seed or input file at once (before the seconds that importing torch, nltk and numba take) with the same
message :func:`hf_synth.io.load_seed_dataset` gives.

Only the standard library is imported here (pyarrow for a parquet file's column names).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

#: The file suffixes a dataset may be read from, and the datasets builder that reads each.
FILE_LOADERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "text"}


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
    _json_rows(path)


def _json_rows(path: Path) -> list[dict]:
    """The objects of a JSON or JSON Lines file (errors as :func:`check_json_file`)."""
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        raise ValueError(f"{path} is empty; put one JSON object per line in it (or pass another file).")
    if path.suffix.lower() == ".json" and text.lstrip()[:1] in "[{":
        try:
            value = json.loads(text)
            return [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, dict)]
        except json.JSONDecodeError as err:
            if text.lstrip()[:1] == "[":
                raise ValueError(
                    f"{path} line {err.lineno} column {err.colno}: not valid JSON ({err.msg}); fix that line."
                ) from None
            # a .json file may also be JSON Lines: check it line by line
    rows = []
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
        rows.append(value)
    return rows


def looks_local(source: str) -> bool:
    """Whether ``source``, which does not exist, was meant as a local path rather than a Hub dataset id."""
    return source.startswith((".", "/", "~")) or source.endswith(tuple(FILE_LOADERS))


def check_file(path: Path) -> None:
    """Refuse a dataset file that cannot be read: an unknown suffix, 0 bytes, bytes that are not UTF-8,
    a JSON line that does not parse (each naming the file, the line and the fix)."""
    builder = FILE_LOADERS.get(path.suffix.lower())
    if builder is None:
        raise ValueError(f"Cannot read {path}: use a .jsonl, .json, .csv, .parquet or .txt file.")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes); pass a file with rows in it.")
    if builder != "parquet":
        check_utf8(path)
    if builder == "json":
        check_json_file(path)


def file_columns(path: Path) -> list[str]:
    """The columns datasets will read from a (checked) dataset file, in order of first appearance."""
    builder = FILE_LOADERS[path.suffix.lower()]
    if builder == "json":
        return list(dict.fromkeys(key for row in _json_rows(path) for key in row))
    if builder == "csv":
        with open(path, encoding="utf-8", newline="") as handle:
            return next(csv.reader(handle), [])
    if builder == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    return ["text"]


def check_input(source: str | Path | None, *, what: str = "input", column: str | None = None) -> None:
    """Refuse a local input that cannot be used, before anything heavy is imported: a path that does not
    exist, a file :func:`check_file` refuses, or (with ``column``) a file without that instruction
    column. Folders and Hub ids are left to the loader; ``None`` (hf-synth's example seeds) passes."""
    if source is None:
        return
    path = Path(source).expanduser()
    if not path.exists():
        if looks_local(str(source)):
            raise FileNotFoundError(f"Seed file or folder {str(source)!r} does not exist.")
        return  # a Hub id
    if not path.is_file():
        return
    check_file(path)
    if column is not None:
        columns = file_columns(path)
        if column not in columns:
            raise ValueError(
                f"The {what} dataset has no {column!r} column (columns: {', '.join(columns) or 'none'}); "
                "map yours with instruction_column=NAME (CLI: --instruction-column NAME)."
            )
