"""Small helpers shared by the pipelines for building, formatting and mapping datasets.

Row formatting lives here and only here: :func:`user_content` is the user turn of a task (every step,
``refine``'s evaluation prompts, the review's edited rows and the learnability filter build it with it),
:func:`chat_messages` a row's ``messages`` and :func:`add_messages` that column for a whole dataset.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from datasets import Dataset, Features, List, Value, concatenate_datasets

from .checkpoint import Checkpointer, map_in_threads
from .engine.protocol import engine_concurrency, engine_workers

logger = logging.getLogger(__name__)


#: The columns every generated row starts with, whatever made it (types for ``datasets.Features``).
BASE_FEATURES = {
    "id": Value("string"),
    "instruction": Value("string"),
    "input": Value("string"),
    "output": Value("string"),
    "messages": List({"role": Value("string"), "content": Value("string")}),
    "source": Value("string"),
    "round": Value("int64"),
}


def empty_dataset(features: Features) -> Dataset:
    """A dataset with no rows but the given columns and types (so it concatenates with real ones)."""
    return Dataset.from_dict({name: [] for name in features}, features=features)


def fingerprint_rows(rows: Iterable[dict]) -> str:
    """A content hash of rows, used to tie checkpoints to their input."""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False, default=str).encode())
    return digest.hexdigest()


def fresh_fingerprint() -> str:
    """A new datasets fingerprint, for maps whose function closes over a model (datasets cannot hash it).
    Results of those maps live in memory or in our checkpoints, never in datasets' cache."""
    return f"hf-synth-{uuid.uuid4().hex}"


def checkpointed_map(
    dataset: Dataset,
    function: Callable[[dict[str, list]], dict[str, Any]],
    checkpointer: Checkpointer | None,
    name: str,
    *,
    batch_size: int,
    desc: str,
    features: Features | None = None,
    workers: int = 1,
) -> Dataset:
    """A batched ``Dataset.map`` that keeps each finished chunk on disk when ``checkpointer`` is enabled.

    ``features`` fixes the output types, so chunks whose new columns happen to be all null still
    concatenate with the others. With ``workers`` > 1 (:func:`~hf_synth.engine.protocol.engine_workers`:
    an engine that takes concurrent calls), that many batches are mapped at once in threads, so the next
    batch's prompts reach the engine while the last wave of one still decodes; the rows are the same.
    """
    kwargs = {
        "batched": True,
        "batch_size": batch_size,
        "desc": desc,
        "new_fingerprint": fresh_fingerprint(),
        "features": features,
    }
    if checkpointer is not None and checkpointer.enabled:
        return checkpointer.map(dataset, function, name, workers=workers, **kwargs)
    if workers <= 1 or len(dataset) <= batch_size:
        return dataset.map(function, keep_in_memory=True, **kwargs)
    starts = range(0, len(dataset), batch_size)
    parts = map_in_threads(
        lambda start: dataset.select(range(start, min(start + batch_size, len(dataset)))).map(
            function, keep_in_memory=True, **kwargs
        ),
        starts,
        workers,
    )
    return concatenate_datasets(parts)


def engine_map(
    dataset: Dataset,
    function: Callable[[dict[str, list]], dict[str, Any]],
    checkpointer: Checkpointer | None,
    name: str,
    engine,
    checkpoint_every: int,
    desc: str,
    features: Features | None = None,
) -> Dataset:
    """:func:`checkpointed_map` of a step whose ``function`` makes one ``engine`` call per batch: a batch is
    at least the engine's width (:func:`~hf_synth.engine.protocol.engine_concurrency`), so its slots stay
    full, and two batches are in flight where the engine takes concurrent calls, so its slots refill while
    a batch's last wave decodes."""
    return checkpointed_map(
        dataset,
        function,
        checkpointer,
        name,
        batch_size=max(checkpoint_every, engine_concurrency(engine)),
        desc=desc,
        features=features,
        workers=engine_workers(engine),
    )


def map_in_one_batch(dataset: Dataset, function: Callable[..., dict[str, Any]], **kwargs: Any) -> Dataset:
    """``dataset.map(function, batched=True, with_indices=True)`` over all rows in one batch, in memory.

    datasets types new columns from the first batch it writes (1,000 rows by default): a column whose first
    rows are all empty lists would be typed list<null>, and the first value of a later batch would fail to
    cast. ``kwargs`` go to ``Dataset.map``."""
    whole = max(1, len(dataset))
    return dataset.map(
        function,
        batched=True,
        batch_size=whole,
        with_indices=True,
        keep_in_memory=True,
        writer_batch_size=whole,
        **kwargs,
    )


def config_fingerprint(config: Any, exclude: Iterable[str] = ()) -> dict[str, Any]:
    """A dataclass config as JSON-safe data, without the fields in ``exclude`` (fields that only decide when
    a run stops, so that a longer run may reuse the checkpoints of a shorter one)."""
    data = json.loads(json.dumps(dataclasses.asdict(config), default=str))
    return {k: v for k, v in data.items() if k not in set(exclude)}


def unique_ids(dataset: Dataset) -> list[str] | None:
    """The ``id`` column as strings when it exists and holds unique, non-empty values; else ``None``."""
    if "id" not in dataset.column_names:
        return None
    ids = list(dataset["id"])
    if any(i in (None, "") for i in ids) or len(set(map(str, ids))) != len(ids):
        return None
    return [str(i) for i in ids]


def row_ids(dataset: Dataset) -> list[str]:
    """The ids of ``dataset``'s rows: :func:`unique_ids`, or ``row-00000``, ``row-00001``... when the ``id``
    column is missing or does not name each row once (what derived rows' ``parent_id`` points to)."""
    return unique_ids(dataset) or [f"row-{i:05d}" for i in range(len(dataset))]


def require_columns(dataset: Dataset, columns: Iterable[str]) -> None:
    """Refuse ``dataset`` when it lacks one of ``columns``, naming the columns it has."""
    for column in columns:
        if column not in dataset.column_names:
            raise ValueError(f"No {column!r} column (columns: {', '.join(dataset.column_names)})")


def as_texts(values: Iterable[Any]) -> list[str]:
    """Values as text: ``None`` is the empty string, anything else its ``str``."""
    return ["" if v is None else str(v) for v in values]


def column_texts(dataset: Dataset, column: str) -> list[str]:
    """A column's values as text (see :func:`as_texts`); a missing column is refused, naming the columns
    there are."""
    if column not in dataset.column_names:
        raise ValueError(
            f"No {column!r} column (columns: {', '.join(dataset.column_names)}); pass column=NAME."
        )
    return as_texts(dataset[column])


def iter_instructions(dataset: Dataset, column: str, what: str) -> Iterator[tuple[int, dict, str]]:
    """Yield ``(row index, row, stripped instruction)`` for rows with a non-empty instruction.

    Errors name the fix: a missing column lists the dataset's columns and the option to map one; an empty
    dataset, a non-text value (with its row) and a dataset with only empty instructions are refused.
    ``what`` names the dataset in messages (e.g. "seed", "input").
    """
    if column not in dataset.column_names:
        raise ValueError(
            f"The {what} dataset has no {column!r} column (columns: {', '.join(dataset.column_names) or 'none'}); "
            "map yours with instruction_column=NAME (CLI: --instruction-column NAME)."
        )
    if len(dataset) == 0:
        raise ValueError(f"The {what} dataset is empty; it needs at least one instruction.")
    found = False
    empty: list[int] = []
    for i, row in enumerate(dataset):
        value = row[column]
        if value is not None and not isinstance(value, str):
            raise TypeError(
                f"{what.capitalize()} row {i}: column {column!r} holds {type(value).__name__}, not text; "
                "pass instruction_column= naming a text column."
            )
        if value and value.strip():
            found = True
            yield i, row, value.strip()
        else:
            empty.append(i)
    if not found:
        raise ValueError(f"Every row of the {what} dataset has an empty {column!r}.")
    if empty:
        logger.warning(
            "Skipped %d %s row(s) with an empty or null %r (rows %s%s)",
            len(empty),
            what,
            column,
            ", ".join(map(str, empty[:10])),
            ", ..." if len(empty) > 10 else "",
        )


def journaled(engine, checkpointer: Checkpointer | None):
    """``engine`` with its completions journaled in ``checkpointer``'s folder as they finish (and reused
    when a re-run asks again), so a step can send all its rows in one engine call; ``engine`` itself
    without a checkpoint folder."""
    return checkpointer.engine(engine) if checkpointer is not None else engine


# ---------------------------------------------------------------------------- row formatting
def user_content(instruction: str, input_text: str = "", *, skip_blank_input: bool = False) -> str:
    """The user turn of a task: the instruction, then its input (if any) after a blank line.

    ``skip_blank_input``: an input of only white space counts as none. Prompts asked of a model at
    evaluation (``refine``, the learnability filter) are built so; training rows keep such an input as it is.
    """
    if not input_text or (skip_blank_input and not input_text.strip()):
        return instruction
    return f"{instruction}\n\n{input_text}"


def chat_messages(instruction: str, input_text: str, output: str) -> list[dict[str, str]]:
    """A row's ``messages`` in TRL's conversational format: user = instruction + input, assistant = output."""
    return [
        {"role": "user", "content": user_content(instruction, input_text)},
        {"role": "assistant", "content": output},
    ]


def add_messages(dataset: Dataset) -> Dataset:
    """Add ``messages`` in TRL's conversational format (user = instruction + input, assistant = output)."""

    def _messages(batch: dict[str, list]) -> dict[str, list]:
        return {
            "messages": [
                chat_messages(instruction, input_text, output)
                for instruction, input_text, output in zip(
                    batch["instruction"], batch["input"], batch["output"], strict=True
                )
            ]
        }

    return dataset.map(_messages, batched=True, keep_in_memory=True)
