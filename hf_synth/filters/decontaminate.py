"""Decontamination: drop rows that share a long n-gram (or a near-duplicate embedding) with evaluation sets.

Texts are normalised to lower-case word tokens (punctuation stripped). Every ``ngram``-token window of
every evaluation text is hashed once (64-bit polynomial hash, vectorised over all texts at once) into one
sorted array per set; a row's windows are then looked up with ``searchsorted``, so 50k rows against a few
evaluation sets take seconds. A text shorter than ``ngram`` tokens has no window and can match nothing (the
GPT-3 / Llama convention); use the embedding check for short texts.

Each dropped row gets one reason per matching set, ``contaminated:<set> <details>``: the row's column, the
shared n-gram (or the cosine) and the evaluation text it came from. The part before the first space is the
reason's key (:func:`~hf_synth.filters.dataset_filters.reason_key`), so counts in ``summary.json`` and the
card are per set.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from datasets import Dataset

from ..rows import column_texts
from .dataset_filters import add_filter_columns

logger = logging.getLogger(__name__)

REASON_PREFIX = "contaminated:"
_WORD = re.compile(r"\w+")
_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant; arithmetic wraps modulo 2**64
_SNIPPET = 160


def normalised_tokens(text: str | None) -> list[str]:
    """Lower-case word tokens of ``text``; punctuation and whitespace are separators."""
    return _WORD.findall((text or "").lower())


def _snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _SNIPPET else text[: _SNIPPET - 3] + "..."


class _Vocabulary:
    """Token -> id, shared by evaluation texts and rows so equal tokens hash equally."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def windows(self, texts: Sequence[str], n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Hashes of every n-token window of ``texts``: (hashes, text index, token offset in its text)."""
        ids, owner, offsets = [], [], []
        setdefault = self.ids.setdefault
        for i, text in enumerate(texts):
            tokens = normalised_tokens(text)
            if len(tokens) < n:
                continue
            ids.extend(setdefault(t, len(self.ids) + 1) for t in tokens)
            owner.extend([i] * len(tokens))
            offsets.extend(range(len(tokens)))
        if not ids:
            empty = np.zeros(0, dtype=np.int64)
            return np.zeros(0, dtype=np.uint64), empty, empty
        tokens_arr = np.asarray(ids, dtype=np.uint64)
        owner_arr = np.asarray(owner, dtype=np.int64)
        count = len(tokens_arr) - n + 1
        hashes = np.zeros(count, dtype=np.uint64)
        with np.errstate(over="ignore"):
            for j in range(n):
                hashes = hashes * _MULTIPLIER + tokens_arr[j : j + count]
        inside = owner_arr[:count] == owner_arr[n - 1 :]  # the window does not cross into the next text
        return hashes[inside], owner_arr[:count][inside], np.asarray(offsets, dtype=np.int64)[:count][inside]


@dataclass
class EvaluationSet:
    """The texts of one evaluation set and where each came from (``"row 12 (question)"``)."""

    name: str
    texts: list[str]
    origins: list[str]


def _set_name(source: str, name: str | None) -> str:
    if name:
        return re.sub(r"\s+", "_", str(name))
    path = Path(source)
    base = path.stem if path.suffix else source.rstrip("/").split("/")[-1] if path.is_dir() else source
    return re.sub(r"\s+", "_", base) or "evaluation"


def _string_columns(dataset: Dataset) -> list[str]:
    return [c for c, f in dataset.features.items() if getattr(f, "dtype", None) in ("string", "large_string")]


def evaluation_set_from_dataset(
    dataset: Dataset, name: str, columns: Sequence[str] | None = None
) -> EvaluationSet:
    """The texts of ``columns`` of ``dataset`` (default: every string column) as one evaluation set."""
    columns = list(columns) if columns else _string_columns(dataset)
    missing = [c for c in columns if c not in dataset.column_names]
    if missing:
        raise ValueError(
            f"Evaluation set {name!r} has no column(s) {', '.join(missing)} "
            f"(columns: {', '.join(dataset.column_names)}); fix eval_columns."
        )
    if not columns:
        raise ValueError(f"Evaluation set {name!r} has no string column; name its columns with eval_columns.")
    texts, origins = [], []
    for column in columns:
        for i, text in enumerate(dataset[column]):
            if text:
                texts.append(str(text))
                origins.append(f"row {i} ({column})")
    return EvaluationSet(name, texts, origins)


def check_evaluation_sources(eval_sets: Sequence[str | Mapping[str, Any]] | str | Mapping[str, Any]) -> None:
    """Refuse an evaluation set that cannot be had, before anything runs: a local path that does not exist,
    or a Hub dataset id that is not cached while the Hub is offline (:func:`hf_synth.io.check_dataset_source`);
    each error names the set and the fix."""
    from ..input_files import looks_local
    from ..io import check_dataset_source

    specs = [eval_sets] if isinstance(eval_sets, str | Mapping) else list(eval_sets)
    for spec in specs:
        source = spec.get("path") if isinstance(spec, Mapping) else spec
        if not isinstance(source, str) or Path(source).expanduser().exists():
            continue
        if looks_local(source):
            raise FileNotFoundError(
                f"Evaluation set {source!r} does not exist; pass an existing file or folder, or a Hub dataset id."
            )
        check_dataset_source(source)


def load_evaluation_set(spec: str | Mapping[str, Any], columns: Sequence[str] | None = None) -> EvaluationSet:
    """One evaluation set from a file (JSONL/JSON/CSV/Parquet), a dataset folder or a Hub id.

    ``spec`` is a path or Hub id, or a mapping ``{path, name?, split?, config?, columns?}`` (``config``: a
    Hub dataset's configuration, e.g. ``main`` of ``openai/gsm8k``; ``split`` defaults to ``test`` when the
    Hub dataset has one, else as in ``load_seed_dataset``).
    """
    if isinstance(spec, str):
        spec = {"path": spec}
    unknown = sorted(set(spec) - {"path", "name", "split", "config", "columns"})
    if unknown or "path" not in spec:
        raise ValueError(
            f"Evaluation set {dict(spec)!r}: give a path or Hub id, or a mapping with 'path' and optional "
            f"name, split, config, columns (unknown keys: {', '.join(unknown) or 'none'})."
        )
    source, split = str(spec["path"]), spec.get("split")
    check_evaluation_sources([source])
    if spec.get("config"):
        from datasets import load_dataset

        dataset = load_dataset(source, spec["config"], split=split or "test")
    else:
        from ..io import load_seed_dataset

        local = Path(source).expanduser().exists()
        try:
            dataset = load_seed_dataset(source, split=split or (None if local else "test"))
        except ValueError:
            if split or local:
                raise
            dataset = load_seed_dataset(source)  # a Hub dataset without a test split
    name = _set_name(source, spec.get("name"))
    return evaluation_set_from_dataset(dataset, name, spec.get("columns") or columns)


class Decontaminator:
    """N-gram hash sets (and optionally embeddings) of evaluation sets, built once, queried per text.

    ``sets``: :class:`EvaluationSet` objects, or a mapping name -> texts.
    """

    def __init__(
        self,
        sets: Sequence[EvaluationSet] | Mapping[str, Sequence[str]],
        *,
        ngram: int = 13,
        embedding_threshold: float | None = None,
        embedding_model: str | None = None,
    ) -> None:
        if ngram < 1:
            raise ValueError(f"ngram must be >= 1, got {ngram}")
        if embedding_threshold is not None and not -1 <= embedding_threshold <= 1:
            raise ValueError(
                f"embedding_threshold must be a cosine in [-1, 1] or None, got {embedding_threshold}"
            )
        if isinstance(sets, Mapping):
            sets = [EvaluationSet(n, list(t), [f"row {i}" for i in range(len(t))]) for n, t in sets.items()]
        names = [s.name for s in sets]
        if len(set(names)) != len(names):
            raise ValueError(
                f"Evaluation set names repeat ({', '.join(names)}); give each a distinct 'name'."
            )
        self.sets = list(sets)
        self.ngram = ngram
        self.embedding_threshold = embedding_threshold
        self.embedding_model = embedding_model
        self._vocab = _Vocabulary()
        self._index = []
        for s in self.sets:
            hashes, owner, offset = self._vocab.windows(s.texts, ngram)
            order = np.argsort(hashes, kind="stable")
            self._index.append((hashes[order], owner[order], offset[order]))
        self._vectors = None
        if embedding_threshold is not None:
            from .embedding import embed

            self._vectors = [
                embed(s.texts, embedding_model) if s.texts else np.zeros((0, 1), np.float32)
                for s in self.sets
            ]

    def ngram_matches(self, texts: Sequence[str]) -> list[dict[str, tuple[str, str]]]:
        """Per text: {set name: (shared n-gram, evaluation text's origin)} for every set it shares one with."""
        hashes, owner, offset = self._vocab.windows(texts, self.ngram)
        found: list[dict[str, tuple[str, str]]] = [{} for _ in texts]
        for s, (keys, eval_owner, eval_offset) in zip(self.sets, self._index, strict=True):
            if not len(keys) or not len(hashes):
                continue
            where = np.searchsorted(keys, hashes)
            where[where == len(keys)] = 0
            hit = keys[where] == hashes
            for k in np.flatnonzero(hit):
                row = int(owner[k])
                if s.name in found[row]:
                    continue
                tokens = normalised_tokens(texts[row])[offset[k] : offset[k] + self.ngram]
                j = int(eval_owner[where[k]])
                start = int(eval_offset[where[k]])
                if normalised_tokens(s.texts[j])[start : start + self.ngram] != tokens:
                    continue  # a hash collision, not a shared n-gram
                found[row][s.name] = (" ".join(tokens), f"{s.origins[j]}: {_snippet(s.texts[j])!r}")
        return found

    def embedding_matches(self, texts: Sequence[str]) -> list[dict[str, tuple[float, str]]]:
        """Per text: {set name: (cosine, origin)} for every set holding a text at or above the threshold."""
        found: list[dict[str, tuple[float, str]]] = [{} for _ in texts]
        if self._vectors is None or not texts:
            return found
        from .embedding import embed

        present = [i for i, t in enumerate(texts) if t]
        if not present:
            return found
        vectors = embed([texts[i] for i in present], self.embedding_model)
        for s, eval_vectors in zip(self.sets, self._vectors, strict=True):
            if not len(s.texts):
                continue
            for start in range(0, len(present), 1024):
                sims = vectors[start : start + 1024] @ eval_vectors.T
                best = sims.argmax(axis=1)
                for r, j in enumerate(best):
                    cosine = float(sims[r, j])
                    if cosine >= self.embedding_threshold:
                        found[present[start + r]][s.name] = (
                            cosine,
                            f"{s.origins[j]}: {_snippet(s.texts[j])!r}",
                        )
        return found


def decontaminate_filter(
    dataset: Dataset,
    eval_sets: Sequence[str | Mapping[str, Any]] | str = (),
    columns: Sequence[str] = ("instruction", "input", "output"),
    *,
    eval_columns: Sequence[str] | None = None,
    ngram: int = 13,
    embedding_threshold: float | None = None,
    embedding_model: str | None = None,
    decontaminator: Decontaminator | None = None,
) -> Dataset:
    """Drop rows whose ``columns`` share an ``ngram``-token n-gram (or, with ``embedding_threshold``, an
    embedding cosine at or above it) with any text of the evaluation sets.

    ``eval_sets``: paths (JSONL/JSON/CSV/Parquet, dataset folders) or Hub ids, or mappings
    ``{path, name?, split?, config?, columns?}``; ``eval_columns``: their text columns (default: every string
    column). Reasons: ``contaminated:<set> <column> shares 13-gram '...' with <origin>: '<text>'``, one per
    matching set. Scores: ``contaminated_sets`` (how many sets a row matched). Columns of ``columns`` that
    the dataset lacks are skipped; none present is an error. ``decontaminator``: a prepared
    :class:`Decontaminator` (then ``eval_sets``, ``eval_columns``, ``ngram`` and the embedding settings are
    its own).
    """
    if decontaminator is None:
        specs = [eval_sets] if isinstance(eval_sets, str | Mapping) else list(eval_sets)
        if not specs:
            raise ValueError("decontaminate needs eval_sets: a list of evaluation files or Hub dataset ids.")
        sets = [load_evaluation_set(spec, eval_columns) for spec in specs]
        decontaminator = Decontaminator(
            sets, ngram=ngram, embedding_threshold=embedding_threshold, embedding_model=embedding_model
        )
        logger.info(
            "Decontaminating against %s",
            ", ".join(f"{s.name} ({len(s.texts)} texts)" for s in decontaminator.sets),
        )
    columns = [columns] if isinstance(columns, str) else list(columns)
    present = [c for c in columns if c in dataset.column_names]
    if not present:
        raise ValueError(
            f"decontaminate: none of the columns {', '.join(columns)} is in the dataset "
            f"(columns: {', '.join(dataset.column_names)}); pass columns=[...]."
        )
    reasons: list[list[str]] = [[] for _ in range(len(dataset))]
    matched: list[set[str]] = [set() for _ in range(len(dataset))]
    n = decontaminator.ngram
    for column in present:
        texts = column_texts(dataset, column)
        found = [  # n-gram matches first: a row's reason for a set is the first match found
            (i, name, f"shares {n}-gram {gram!r} with {origin}")
            for i, hits in enumerate(decontaminator.ngram_matches(texts))
            for name, (gram, origin) in hits.items()
        ] + [
            (i, name, f"has embedding cosine {cosine:.3f} with {origin}")
            for i, hits in enumerate(decontaminator.embedding_matches(texts))
            for name, (cosine, origin) in hits.items()
        ]
        for i, name, why in found:
            if name not in matched[i]:
                matched[i].add(name)
                reasons[i].append(f"{REASON_PREFIX}{name} {column} {why}")
    scores = [{"contaminated_sets": len(m)} for m in matched]
    return add_filter_columns(dataset, scores, reasons)


def contamination_counts(reason_counts: Mapping[str, int]) -> dict[str, int]:
    """Rows dropped per evaluation set, from reason counts keyed by :func:`reason_key`."""
    return {k[len(REASON_PREFIX) :]: v for k, v in reason_counts.items() if k.startswith(REASON_PREFIX)}
