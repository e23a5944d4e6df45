"""The engine port: what every pipeline step needs from a text generator, whatever backend runs it.

Pipelines, filters and augment steps type against :class:`Engine`; backends (hf-synth's continuous
batcher, transformers' ``generate`` or ``generate_batch``, vLLM) implement it in their own modules and
are imported only when chosen (see :mod:`hf_synth.engine.selection`).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from .engine_config import SamplingParams

logger = logging.getLogger(__name__)

#: A prompt is either a user message or a list of chat messages (``{"role", "content"}``). When the last
#: message is the assistant's, the model continues it (prefill) instead of starting a new turn.
Prompt = str | Sequence[dict]


@dataclass
class GenerationOutput:
    """One generated completion.

    Attributes:
        text: The completion, without the prompt or special tokens (a prefill is not repeated).
        prompt_tokens: Tokens in the formatted prompt.
        completion_tokens: Generated tokens, counting the end-of-sequence token when the model stopped.
        finish_reason: ``"stop"`` if the model ended the text, ``"length"`` if ``max_new_tokens`` cut it.
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str


_STATS_LOCK = threading.Lock()


@dataclass
class EngineStats:
    """Running totals over every call of one engine."""

    prompts: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0

    def add(self, outputs: Sequence[GenerationOutput], seconds: float) -> None:
        """Count one batch of outputs that took ``seconds`` (safe from calls running at once)."""
        prompt_tokens = sum(o.prompt_tokens for o in outputs)
        completion_tokens = sum(o.completion_tokens for o in outputs)
        with _STATS_LOCK:
            self.prompts += len(outputs)
            self.prompt_tokens += prompt_tokens
            self.completion_tokens += completion_tokens
            self.seconds += seconds

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict:
        return {
            "prompts": self.prompts,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "seconds": round(self.seconds, 3),
            "tokens_per_second": round(self.tokens_per_second, 2),
        }


@runtime_checkable
class Engine(Protocol):
    """What a pipeline step asks of a text generator.

    Attributes:
        model_id: The model's path or Hub id, recorded in every row it writes.
        backend: The backend that really runs (``auto`` resolved), e.g. ``"continuous"``.
        stats: Running totals of prompts, tokens and seconds.

    An engine may also say how many sequences it decodes at once with a ``max_concurrency`` attribute
    (optional; :func:`engine_concurrency` reads it, 256 where it is missing), and that ``generate`` may be
    called from several threads at once, the calls sharing its slots, with ``concurrent_calls = True``
    (optional; :func:`engine_takes_concurrent_calls` reads it, False where it is missing): pipelines then
    submit the next chunk, and the next round's instruction requests, while a call is still decoding.
    """

    model_id: str
    backend: str
    stats: EngineStats

    def format_prompt(self, prompt: Prompt) -> str:
        """The text the model sees for ``prompt`` (chat template applied)."""
        ...

    def generate(
        self,
        prompts: Sequence[Prompt],
        sampling: SamplingParams | None = None,
        *,
        desc: str = "Generating",
        progress: bool = True,
        on_output: Callable[[int, GenerationOutput], None] | None = None,
    ) -> list[GenerationOutput]:
        """One completion per prompt, in the order of ``prompts``; ``on_output(index, output)`` is called
        for each as soon as it is finished (the journal of :mod:`.journal` keeps them on disk)."""
        ...

    def describe(self) -> dict[str, Any]:
        """``model``, ``backend``, ``dtype`` and ``device`` (written to ``summary.json`` and the card)."""
        ...


_WARNED_NO_TEMPLATE: set[str] = set()


def format_chat_prompt(tokenizer, prompt: Prompt, model_id: str = "unknown") -> str:
    """Render a prompt with ``tokenizer``'s chat template (messages joined as plain text without one).

    A final assistant message is continued (prefill) rather than closed.
    """
    messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
    if not messages:
        raise ValueError("A prompt needs at least one message")
    prefill = messages[-1].get("role") == "assistant"
    if getattr(tokenizer, "chat_template", None):
        return tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=not prefill, continue_final_message=prefill
        )
    if model_id not in _WARNED_NO_TEMPLATE:
        logger.warning("%s has no chat template; joining messages as plain text", model_id)
        _WARNED_NO_TEMPLATE.add(model_id)
    text = "\n\n".join(str(m["content"]) for m in messages)
    return text if prefill else text + "\n\n"


#: How many sequences an engine is taken to decode at once when it does not say (``max_concurrency``).
DEFAULT_CONCURRENCY = 256


def engine_concurrency(engine: Engine) -> int:
    """How many prompts ``engine`` decodes at once, so a step can send at least that many per call: its
    ``max_concurrency`` (the KV-cache slots of ``continuous``, ``max_num_seqs`` of vLLM, the requests in
    flight of ``server``), or :data:`DEFAULT_CONCURRENCY` for an engine that does not say."""
    width = getattr(engine, "max_concurrency", None)
    return int(width) if isinstance(width, int) and width >= 1 else DEFAULT_CONCURRENCY


def engine_takes_concurrent_calls(engine: Engine) -> bool:
    """Whether ``generate`` of ``engine`` may run in several threads at once, the calls sharing the
    engine's slots (its ``concurrent_calls``, e.g. a client of a server that
    batches whatever is in flight). In-process engines decode one call at a time on the calling thread."""
    return getattr(engine, "concurrent_calls", False) is True


def engine_workers(engine: Engine) -> int:
    """Engine calls a step keeps in flight: 2 where ``engine`` takes concurrent calls (the next chunk is
    queued while one drains, so its slots refill across call boundaries), else 1."""
    return 2 if engine_takes_concurrent_calls(engine) else 1


def describe_engines(engines: Sequence[Engine]) -> list[dict[str, Any]]:
    """:meth:`Engine.describe` of each distinct engine (an engine used twice is listed once)."""
    seen: dict[int, dict[str, Any]] = {}
    for engine in engines:
        seen.setdefault(id(engine), engine.describe())
    return list(seen.values())


def prefill_of(prompt: Prompt) -> str:
    """The assistant message ``prompt`` ends with (the text the model continues), or ``""``."""
    if isinstance(prompt, str) or not prompt:
        return ""
    last = prompt[-1]
    return str(last.get("content", "")) if last.get("role") == "assistant" else ""


def with_prefill(prompt: Prompt, text: str) -> str:
    """The prefill of ``prompt`` and the model's continuation ``text`` as one text, as the model wrote it
    (a space between them unless either side already has whitespace there). The one place a caller that
    parses prefill + continuation joins them."""
    prefix = prefill_of(prompt)
    if not prefix:
        return text
    if prefix[-1:].isspace() or text[:1].isspace() or not text:
        return prefix + text
    return f"{prefix} {text}"


def _is_terminal(stream) -> bool:
    """Whether a bar drawn on ``stream`` is seen as a bar: a terminal, or a notebook (tqdm.auto draws a
    widget there)."""
    if "ipykernel" in sys.modules:
        return True
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


class GenerationProgress:
    """The one progress display of an engine call, shared by every backend: prompts finished and generated
    tok/s. On a terminal (or in a notebook) a tqdm bar; elsewhere (a log file, a pipe) a log line every
    :attr:`log_interval` seconds and one when the call ends, so a log holds no redrawn bars. Off when
    ``enabled`` is false or hf-synth's bars are (:func:`hf_synth.progress.disable_progress_bars`,
    ``HF_SYNTH_DISABLE_PROGRESS_BARS=1``); other libraries' switches leave it alone.
    """

    #: Seconds between progress lines when the output is not a terminal.
    log_interval = 30.0

    def __init__(self, total: int, desc: str, enabled: bool = True, stream=None) -> None:
        from ..progress import progress_bars_enabled

        self.total = total
        self.desc = desc
        self.began = time.perf_counter()
        self.tokens = 0
        self.done = 0
        self.bar = None
        stream = stream if stream is not None else sys.stderr
        shown = enabled and progress_bars_enabled() and total > 0
        if shown and _is_terminal(stream):
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="prompt", file=stream, dynamic_ncols=True)
        self.logs = shown and self.bar is None
        self._logged_at = self.began

    def _rate(self) -> float:
        elapsed = time.perf_counter() - self.began
        return self.tokens / elapsed if elapsed > 0 else 0.0

    def finished(self, completion_tokens: int) -> None:
        """Count one finished prompt that generated ``completion_tokens``."""
        self.tokens += completion_tokens
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(tok_s=f"{self._rate():.1f}")
        elif self.logs and time.perf_counter() - self._logged_at >= self.log_interval:
            self._logged_at = time.perf_counter()
            logger.info("%s: %d/%d prompts, %.1f tok/s", self.desc, self.done, self.total, self._rate())

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.logs:
            elapsed = time.perf_counter() - self.began
            logger.info(
                "%s: %d/%d prompts in %.1f s, %.1f tok/s",
                self.desc,
                self.done,
                self.total,
                elapsed,
                self._rate(),
            )
            self.logs = False  # closed twice: logged once
