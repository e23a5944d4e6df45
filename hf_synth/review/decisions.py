"""The review's decisions file: append-only JSON lines, each fsynced before the page hears "saved".

Several tabs, and even several ``hf-synth review`` servers, may write to the same file: every append and
every read happens under an exclusive ``flock``, and a decision names the decision it replaces (``base``),
so one made on a stale view of a row is refused instead of silently overwriting another tab's. A line cut
short by a crash is skipped with a warning (the next append starts on a fresh line), so a crash loses at
most the decision being written.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: What a reviewer can decide about a row. ``edited`` is an acceptance with corrected text.
DECISIONS = ("accepted", "rejected", "edited")
#: The text fields a reviewer may correct.
EDITABLE = ("instruction", "input", "output")
#: The short list of reject reasons the page offers (free text is also allowed).
REJECT_REASONS = (
    "wrong_output",
    "does_not_follow_instruction",
    "unclear_or_impossible_task",
    "unsafe_or_toxic",
    "trivial_or_duplicate",
)
MAX_REASON_CHARS = 200


class DecisionConflict(Exception):
    """A decision was made on a stale view: another tab or server decided the row meanwhile."""

    def __init__(self, current: Decision | None) -> None:
        super().__init__("the row was decided meanwhile in another tab")
        self.current = current


@dataclass
class Decision:
    """One line of the decisions file.

    Args:
        row: The row's review key (its ``id``, or ``#<index>`` / ``rejected#<index>`` without unique ids).
        text_hash: Hash of the row's instruction/input/output when it was shown, so decisions made on other
            data are detected when they are applied.
        decision: One of :data:`DECISIONS`.
        reason: Why a row was rejected: one of :data:`REJECT_REASONS` or the reviewer's own words.
        edits: The corrected fields of an ``edited`` row (field -> new text).
        reviewer: The reviewer's name, when given.
        time: When it was decided (UTC, ISO 8601).
        base: The ``uid`` of the decision this one replaces (None: the row had none).
        uid: This decision's own id.
    """

    row: str
    text_hash: str
    decision: str
    reason: str | None = None
    edits: dict[str, str] = field(default_factory=dict)
    reviewer: str | None = None
    time: str = ""
    base: str | None = None
    uid: str = ""

    def __post_init__(self) -> None:
        for name in ("reason", "reviewer", "base"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), str):
                raise ValueError(f"{name} must be text, not {type(getattr(self, name)).__name__}")
        if not isinstance(self.edits, dict):
            raise ValueError("edits must map field names to text")
        if self.decision not in DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)}, not {self.decision!r}")
        if self.decision == "rejected":
            reason = " ".join((self.reason or "").split())
            if not reason:
                raise ValueError("a rejection needs a reason: pick one from the list or type your own")
            self.reason = reason[:MAX_REASON_CHARS]
        else:
            self.reason = None
        unknown = sorted(set(self.edits) - set(EDITABLE))
        if unknown:
            raise ValueError(f"only {', '.join(EDITABLE)} can be edited, not {', '.join(unknown)}")
        if self.decision == "edited" and not self.edits:
            raise ValueError("an edit needs at least one changed field")
        if self.decision != "edited":
            self.edits = {}
        if any(not isinstance(v, str) for v in self.edits.values()):
            raise ValueError("edited fields must be text")
        self.reviewer = (self.reviewer or "").strip()[:100] or None
        self.time = self.time or datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.uid = self.uid or uuid.uuid4().hex

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class DecisionLog:
    """The decisions of one review, read from and appended to ``path`` (see the module docstring)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        if created:  # the new file's name survives a crash too
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        self._thread_lock = threading.Lock()  # flock does not exclude threads sharing this descriptor
        self._offset = 0
        self._pending = b""
        self.latest: dict[str, Decision] = {}
        self.decisions: list[Decision] = []  # every readable decision, in file order
        self.count = 0
        self.skipped_lines = 0
        with self._locked():
            self._refresh()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> DecisionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._thread_lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _refresh(self) -> None:
        """Read what other writers appended since the last read (call with the lock held)."""
        size = os.fstat(self._fd).st_size
        if size < self._offset:
            raise RuntimeError(f"{self.path} shrank while the review was open; it is append-only")
        if size == self._offset:
            return
        data = self._pending + os.pread(self._fd, size - self._offset, self._offset)
        self._offset = size
        lines = data.split(b"\n")
        self._pending = lines.pop()  # a last line without newline: cut short by a crash (or being written)
        for number, line in enumerate(lines):
            if line.strip():
                self._apply_line(line, number)

    def _apply_line(self, line: bytes, number: int) -> None:
        try:
            decision = Decision(**json.loads(line))
        except (ValueError, TypeError) as err:
            self.skipped_lines += 1
            logger.warning("%s: skipped an unreadable line (%s): %.80r", self.path, err, line)
            return
        self.latest[decision.row] = decision
        self.decisions.append(decision)
        self.count += 1

    def refresh(self) -> None:
        """Pick up decisions appended by other tabs' servers."""
        with self._locked():
            self._refresh()

    def append(self, decision: Decision, *, check_base: bool = True) -> Decision:
        """Write ``decision`` durably (flushed and fsynced) and return it.

        Raises :class:`DecisionConflict` when ``check_base`` and the row's latest decision is not
        ``decision.base`` (someone decided the row after this view was loaded)."""
        with self._locked():
            self._refresh()
            current = self.latest.get(decision.row)
            if check_base and (current.uid if current else None) != decision.base:
                raise DecisionConflict(current)
            line = json.dumps(decision.to_json(), ensure_ascii=False).encode("utf-8") + b"\n"
            if self._pending:  # a torn line from a crash: end it, so it stays one unreadable line
                line = b"\n" + line
                logger.warning("%s: the last line was cut short (a crash?); it is skipped", self.path)
                self.skipped_lines += 1
                self._pending = b""
            written = os.write(self._fd, line)
            if written != len(line):
                raise OSError(f"short write to {self.path} ({written} of {len(line)} bytes); disk full?")
            os.fsync(self._fd)
            self._offset += len(line)
            self.latest[decision.row] = decision
            self.decisions.append(decision)
            self.count += 1
            return decision

    def history(self, row: str) -> list[Decision]:
        """Every decision made on ``row``, oldest first (reads the whole file)."""
        with self._locked():
            self._refresh()
            found = []
            with open(self.path, "rb") as handle:
                for line in handle:
                    with contextlib.suppress(ValueError, TypeError):
                        decision = Decision(**json.loads(line))
                        if decision.row == row:
                            found.append(decision)
            return found
