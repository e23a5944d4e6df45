"""What a review looks at: a run's kept rows (all, or a seeded sample) and, optionally, its rejected rows,
each with a stable key, the hash of its text, its skill, its evolution operation and its lineage."""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from datasets import Dataset

from ..atomic import atomic_write_text
from ..rows import unique_ids
from ..run_folder import REVIEW_DIR, RunFolder
from .decisions import EDITABLE, Decision, DecisionLog

logger = logging.getLogger(__name__)

DECISIONS_FILE = "decisions.jsonl"
SESSION_FILE = "session.json"
SKILLS_FILE = "skills.json"
#: Columns shown as the row's origin (when present).
META_COLUMNS = ("source", "round", "model", "skill", "evolution_op", "stage", "generation_order")
_REASON_COLUMNS = ("filter_reasons", "elimination_reasons")


def drop_reasons(row: dict[str, Any]) -> list[str]:
    """Why a row was dropped: Self-Instruct and filters write ``filter_reasons``, Evol-Instruct
    ``elimination_reasons``."""
    return next((list(row[c]) for c in _REASON_COLUMNS if row.get(c)), [])


def rate(counts: Counter) -> dict[str, Any]:
    """Reviewed, accepted, edited, rejected and the acceptance rate (accepted or edited / reviewed)."""
    reviewed = counts["accepted"] + counts["edited"] + counts["rejected"]
    return {
        "reviewed": reviewed,
        "accepted": counts["accepted"],
        "edited": counts["edited"],
        "rejected": counts["rejected"],
        "acceptance_rate": round((counts["accepted"] + counts["edited"]) / reviewed, 4) if reviewed else None,
    }


def text_hash(row: dict[str, Any]) -> str:
    """A short hash of a row's editable text: decisions remember what the reviewer saw."""
    payload = json.dumps([row.get(f) or "" for f in EDITABLE], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


@dataclass
class ReviewItem:
    """One row under review.

    Args:
        key: Stable key of the row in the decisions file.
        kind: ``kept`` (in the run's dataset) or ``rejected`` (dropped by the run's filters).
        index: Position in its dataset (kept) or in ``rejected.jsonl``.
        row: The row as stored.
        text_hash: See :func:`text_hash`.
        reasons: Why the run's filters dropped it (rejected rows).
        skill: Skill of the instruction (the row's ``skill`` column, or the skill classifier's guess).
        operation: The Evol-Instruct operation that made it, if any.
    """

    key: str
    kind: str
    index: int
    row: dict[str, Any]
    text_hash: str
    reasons: list[str] = field(default_factory=list)
    skill: str | None = None
    operation: str | None = None


def load_run_dataset(run_dir: Path) -> Dataset:
    """The kept rows of an hf-synth run folder (``dataset/``, else ``data.jsonl``), with a clear error."""
    dataset = RunFolder(run_dir).read_rows()
    missing = [c for c in ("instruction", "output") if c not in dataset.column_names]
    if missing:
        raise ValueError(
            f"{run_dir}'s rows have no {' or '.join(missing)} column (columns: {', '.join(dataset.column_names)}); "
            "a review needs instruction and output text."
        )
    return dataset


class ReviewSet:
    """The rows of a review, in review order, and the decisions made on them.

    The set (a sample or all rows, rejected rows or not) is fixed when a review starts and saved in
    ``RUN_DIR/review/session.json``, so reopening continues the same review."""

    def __init__(
        self,
        run_dir: str | Path,
        *,
        sample: int | None = None,
        seed: int | None = None,
        include_rejected: bool | None = None,
        skills: bool = True,
        background_skills: bool = False,
        restart: bool = False,
    ) -> None:
        self.run_dir = Path(run_dir)
        self.dataset = load_run_dataset(self.run_dir)
        self.rejected_rows = RunFolder(self.run_dir).rejected_rows()
        self.folder = RunFolder(self.run_dir).review_dir
        if restart and self.folder.exists():
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
            self.folder.rename(self.run_dir / f"{REVIEW_DIR}-before-{stamp}")
            logger.info("Earlier review kept as %s", self.run_dir / f"{REVIEW_DIR}-before-{stamp}")
        all_items = self._items()
        self.session = self._session(all_items, sample, seed, include_rejected)
        by_key = {item.key: item for item in all_items}
        missing = [k for k in self.session["rows"] if k not in by_key]
        if missing:
            raise ValueError(
                f"{len(missing)} rows of the review in {self.folder} are no longer in the run (e.g. "
                f"{missing[0]!r}); the run was regenerated. Start a new review with --restart (the old one is "
                "kept beside it)."
            )
        self.items = [by_key[k] for k in self.session["rows"]]
        self.by_key = {item.key: item for item in self.items}
        self.all_by_key = by_key
        self.skills_wanted = skills
        self.skills_failed = False
        self._status: dict[str, str] = {}  # the review's rows by status, kept up to date by _sync_counts
        self._counts: Counter = Counter()
        self._folded = 0
        self._by_id: dict[str, dict[str, Any]] | None = None  # rows by their id, for lineage (built once)
        if skills and not background_skills:
            self._add_skills(self.items)
        self.log = DecisionLog(self.folder / DECISIONS_FILE)

    # ------------------------------------------------------------------ rows
    def _items(self) -> list[ReviewItem]:
        kept_rows = self.dataset.to_list()
        ids = unique_ids(self.dataset)
        items = [
            ReviewItem(
                key=ids[i] if ids else f"#{i}",
                kind="kept",
                index=i,
                row=row,
                text_hash=text_hash(row),
                skill=row.get("skill"),
                operation=row.get("evolution_op"),
            )
            for i, row in enumerate(kept_rows)
        ]
        rejected_ids = [r.get("id") for r in self.rejected_rows]
        unique = all(rejected_ids) and len(set(map(str, rejected_ids))) == len(rejected_ids)
        for i, row in enumerate(self.rejected_rows):
            reasons = drop_reasons(row)
            items.append(
                ReviewItem(
                    key=f"rejected:{row['id']}" if unique else f"rejected#{i}",
                    kind="rejected",
                    index=i,
                    row=row,
                    text_hash=text_hash(row),
                    reasons=reasons,
                    skill=row.get("skill"),
                    operation=row.get("evolution_op"),
                )
            )
        return items

    def _session(
        self,
        items: list[ReviewItem],
        sample: int | None,
        seed: int | None,
        include_rejected: bool | None,
    ) -> dict[str, Any]:
        path = self.folder / SESSION_FILE
        asked = {"sample": sample, "seed": seed, "include_rejected": include_rejected}
        if path.is_file():
            session = json.loads(path.read_text(encoding="utf-8"))
            differs = [
                f"--{name.replace('_', '-')} {session[name]}"
                for name, value in asked.items()
                if value is not None and value != session[name]
            ]
            if differs:
                raise ValueError(
                    f"The review in {self.folder} was started with {', '.join(differs)}; reopen it with the "
                    "same settings (or leave them out), or start a new review with --restart."
                )
            return session
        if sample is not None and sample < 1:
            raise ValueError(f"--sample must be at least 1 (got {sample}); leave it out to review every row.")
        seed = 0 if seed is None else seed
        kept = [item.key for item in items if item.kind == "kept"]
        if sample is not None and sample < len(kept):
            kept = random.Random(seed).sample(kept, sample)
        rows = kept + ([item.key for item in items if item.kind == "rejected"] if include_rejected else [])
        if not rows:
            raise ValueError(f"{self.run_dir} has no rows to review.")
        session = {
            "sample": sample,
            "seed": seed,
            "include_rejected": bool(include_rejected),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "rows": rows,
        }
        atomic_write_text(path, json.dumps(session, indent=1) + "\n")
        return session

    def _skill_cache(self) -> dict[str, list[str]]:
        path = self.folder / SKILLS_FILE
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def unlabelled(self) -> list[ReviewItem]:
        """Rows of the review that have no skill yet."""
        return [item for item in self.items if not item.skill]

    def _add_skills(self, items: Sequence[ReviewItem], chunk: int = 512) -> None:
        """Fill ``skill`` from the skill classifier where the row has none. Labels are cached in the review
        folder after every ``chunk`` rows, so a review reopened (or a server killed midway) labels only
        what is left."""
        cache = self._skill_cache()
        for item in items:
            if not item.skill and cache.get(item.key, [None])[0] == item.text_hash:
                item.skill = cache[item.key][1]
        todo = [item for item in items if not item.skill]
        if not todo:
            return
        from ..curation.skill_classifier import default_skill_classifier

        classifier = default_skill_classifier()
        path = self.folder / SKILLS_FILE
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            guesses = classifier.predict([item.row.get("instruction") or "" for item in part])
            for item, skill in zip(part, guesses, strict=True):
                cache[item.key] = [item.text_hash, skill]
            atomic_write_text(path, json.dumps(cache) + "\n")
            for item, skill in zip(part, guesses, strict=True):
                item.skill = skill
            logger.info("Skills labelled: %d of %d rows", min(start + chunk, len(todo)), len(todo))

    def label_skills_in_background(self) -> threading.Thread:
        """Label the rows' skills in a daemon thread (the page is usable meanwhile; the skill filter fills
        in as labels arrive). Returns the thread."""

        def work() -> None:
            try:
                self._add_skills(self.items)
            except Exception:  # noqa: BLE001 - the review goes on without skills; the log says why
                logger.exception("Skill labelling failed; the review goes on without the skill filter")
                self.skills_failed = True

        thread = threading.Thread(target=work, name="hf-synth-review-skills", daemon=True)
        thread.start()
        return thread

    # ------------------------------------------------------------- decisions
    def decision(self, key: str) -> Decision | None:
        """The latest decision on a row, if it was made on the row's current text."""
        decision = self.log.latest.get(key)
        item = self.all_by_key.get(key)
        if decision is None or item is None or decision.text_hash != item.text_hash:
            return None
        return decision

    def stale_decisions(self) -> int:
        """Decisions on rows whose text changed since (or that are gone): they are not applied."""
        return sum(
            1
            for key, d in self.log.latest.items()
            if key not in self.all_by_key or self.all_by_key[key].text_hash != d.text_hash
        )

    def _sync_counts(self) -> None:
        """Fold decisions appended since the last call into the per-row statuses and counts (O(new))."""
        self.log.refresh()
        for decision in self.log.decisions[self._folded :]:
            item = self.by_key.get(decision.row)
            if item is None:
                continue
            old = self._status.pop(item.key, None)
            if old is not None:
                self._counts[old] -= 1
            if decision.text_hash == item.text_hash:
                status = "judged" if item.kind == "rejected" else decision.decision
                self._status[item.key] = status
                self._counts[status] += 1
        self._folded = len(self.log.decisions)

    def progress(self) -> dict[str, Any]:
        """Reviewed / total rows of this review, as of now; accepted, edited, rejected and the acceptance
        rate of the run's kept rows; and how many rows the run's filters dropped were judged."""
        self._sync_counts()
        counts = rate(self._counts)
        return {
            "total": len(self.items),
            "reviewed": counts["reviewed"] + self._counts["judged"],
            **{k: v for k, v in counts.items() if k != "reviewed"},
            "filtered_judged": self._counts["judged"],
            "skills_pending": sum(1 for item in self.items if not item.skill)
            if self.skills_wanted and not self.skills_failed
            else 0,
        }

    def lineage(self, item: ReviewItem) -> list[dict[str, Any]]:
        """An Evol-Instruct row's ancestors, parent first, ending with the root instruction."""
        if not item.row.get("parent_id"):
            return []
        if self._by_id is None:
            self._by_id = {}
            for other in self.all_by_key.values():
                if other.row.get("id"):
                    self._by_id.setdefault(str(other.row["id"]), other.row)
        index = self._by_id
        chain: list[dict[str, Any]] = []
        row, seen = item.row, set()
        while row.get("parent_id") and row["parent_id"] not in seen:
            seen.add(row["parent_id"])
            parent = index.get(row["parent_id"])
            if parent is None:  # the root (or a parent outside this run): its text is on the child row
                chain.append({"id": row["parent_id"], "instruction": row.get("parent_instruction") or ""})
                break
            chain.append(
                {
                    "id": parent["id"],
                    "instruction": parent.get("instruction") or "",
                    "operation": parent.get("evolution_op"),
                    "round": parent.get("round"),
                }
            )
            row = parent
        for position, entry in enumerate(chain):
            roles = ["parent"] if position == 0 else []
            if entry["id"] == item.row.get("root_id"):
                roles.append("root")
            entry["role"] = " and ".join(roles) or "ancestor"
        return chain

    def close(self) -> None:
        self.log.close()
