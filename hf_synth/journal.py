"""Completions kept on disk the moment each one finishes, so one engine call can span a whole step.

A step used to call the engine once per checkpoint chunk (64 rows): the KV-cache slots emptied at every
chunk's end, and a crash lost the chunk in flight. With a :class:`GenerationJournal` every completion is
appended to a JSON-lines file as its sequence finishes (flushed at once, so a killed process loses
nothing the engine reported; fsynced at least every second against power loss), and
:class:`JournaledEngine` answers a request it has already seen from the file instead of generating it
again. A step can then send all its prompts in one call, and a restarted run repeats nothing.

A request's key is the engine's model id, the prompt exactly as the model sees it (chat template
applied) and the sampling parameters: the same question asked the same way. hf-synth's own backends
seed every prompt from its text, so a journaled answer is the answer a fresh call would give.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from .engine.engine_config import SamplingParams
from .engine.protocol import (
    EngineStats,
    GenerationOutput,
    Prompt,
    engine_concurrency,
    engine_takes_concurrent_calls,
)

logger = logging.getLogger(__name__)

#: Seconds between fsyncs of the journal (every line is flushed to the OS at once).
SYNC_EVERY = 1.0


def request_key(model_id: str, text: str, sampling: SamplingParams) -> str:
    """The key of one request: model, rendered prompt and sampling parameters."""
    payload = json.dumps([model_id, text, sampling.to_dict()], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


class GenerationJournal:
    """An append-only JSON-lines file of completions, read back on open (see the module docstring).

    A last line cut short by a crash is ignored (and overwritten by the next append).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.entries: dict[str, GenerationOutput] = {}
        self._handle = None
        self._synced = time.monotonic()
        self._lock = threading.Lock()  # calls running at once (concurrent_calls engines) append together
        if self.path.is_file():
            self._read()

    def _read(self) -> None:
        data = self.path.read_bytes()
        complete = data[: data.rfind(b"\n") + 1]
        for line in complete.decode("utf-8", "surrogatepass").splitlines():
            try:
                entry = json.loads(line)
                self.entries[entry["key"]] = GenerationOutput(**entry["output"])
            except (ValueError, KeyError, TypeError):
                logger.warning("Skipped an unreadable line of %s", self.path)
        if len(complete) < len(data):  # a torn last line: cut it so the next append starts clean
            with open(self.path, "r+b") as handle:
                handle.truncate(len(complete))
        logger.info("%d completions reused from %s", len(self.entries), self.path)

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, key: str) -> GenerationOutput | None:
        return self.entries.get(key)

    def append(self, key: str, output: GenerationOutput) -> None:
        with self._lock:
            self._append(key, output)

    def _append(self, key: str, output: GenerationOutput) -> None:
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - kept open across calls
        entry = {"key": key, "output": vars(output)}
        self._handle.write(json.dumps(entry, ensure_ascii=False) + "\n")
        self._handle.flush()
        self.entries[key] = output
        if time.monotonic() - self._synced >= SYNC_EVERY:
            self._sync()

    def sync(self) -> None:
        with self._lock:
            self._sync()

    def _sync(self) -> None:
        if self._handle is not None:
            self._handle.flush()
            os.fsync(self._handle.fileno())
            self._synced = time.monotonic()

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._sync()
                self._handle.close()
                self._handle = None


class JournaledEngine:
    """An :class:`~hf_synth.engine.Engine` that answers from a :class:`GenerationJournal` where it can and
    journals every completion the wrapped engine makes, as it finishes."""

    def __init__(self, engine, journal: GenerationJournal) -> None:
        self.engine = engine
        self.journal = journal
        self.reused = 0

    @property
    def model_id(self) -> str:
        return self.engine.model_id

    @property
    def backend(self) -> str:
        return self.engine.backend

    @property
    def stats(self) -> EngineStats:
        return self.engine.stats

    @property
    def max_concurrency(self) -> int:
        return engine_concurrency(self.engine)

    @property
    def concurrent_calls(self) -> bool:
        return engine_takes_concurrent_calls(self.engine)

    def format_prompt(self, prompt: Prompt) -> str:
        return self.engine.format_prompt(prompt)

    def describe(self) -> dict[str, Any]:
        return self.engine.describe()

    def generate(
        self,
        prompts: Sequence[Prompt],
        sampling: SamplingParams | None = None,
        *,
        desc: str = "Generating",
        progress: bool = True,
        on_output: Callable[[int, GenerationOutput], None] | None = None,
    ) -> list[GenerationOutput]:
        sampling = sampling or SamplingParams()
        keys = [request_key(self.model_id, self.format_prompt(p), sampling) for p in prompts]
        outputs: list[GenerationOutput | None] = [self.journal.get(k) for k in keys]
        missing = [i for i, out in enumerate(outputs) if out is None]
        self.reused += len(prompts) - len(missing)
        if on_output is not None:
            for i, out in enumerate(outputs):
                if out is not None:
                    on_output(i, out)
        if missing:

            def record(j: int, output: GenerationOutput) -> None:
                index = missing[j]
                self.journal.append(keys[index], output)
                outputs[index] = output
                if on_output is not None:
                    on_output(index, output)

            fresh = self.engine.generate(
                [prompts[i] for i in missing], sampling, desc=desc, progress=progress, on_output=record
            )
            for index, output in zip(missing, fresh, strict=True):
                if keys[index] not in self.journal.entries:  # an engine that reports only at the end
                    self.journal.append(keys[index], output)
                outputs[index] = output
            self.journal.sync()
        return outputs  # type: ignore[return-value]
