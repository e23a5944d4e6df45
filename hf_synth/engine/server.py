"""The ``server`` backend: generation through an inference server that speaks the chat-completions
protocol: vLLM's or SGLang's OpenAI-compatible server (tensor parallel over many GPUs), Text Generation
Inference, Inference Endpoints, llama.cpp's server. Built on httpx (``httpx2``, the HTTP client
huggingface_hub is built on), one pooled keep-alive connection per request in flight.

* Requests go out concurrently (``EngineConfig.concurrency`` in flight, default 64) and come back in prompt
  order; each finished completion is reported at once (``on_output``), so the completion journal keeps it
  even when a later request fails.
* Sampling maps one to one: ``max_new_tokens`` -> ``max_tokens``, ``temperature``, ``top_p``, and, when
  sampling (``temperature > 0``), a seed per request derived from ``SamplingParams.seed`` and the prompt
  (a re-run asks the same question the same way). ``top_k`` and ``repetition_penalty`` are not part of the OpenAI protocol: when set they go in
  the request body as vLLM, SGLang, TGI and llama.cpp name them, and a server that refuses them fails the
  first request with the parameter named; they are never dropped silently.
* A prompt whose last message is the assistant's (prefill) is continued with vLLM's
  ``continue_final_message``; a server that refuses that gets the prompt without the prefill (a warning
  says so once), and a reply that starts with the prefill has it removed, so callers see a continuation
  either way.
* Faults: timeouts, refused or dropped connections, 429 (waiting ``Retry-After``), 5xx and bodies that are
  not the expected JSON are retried with exponential backoff and jitter, up to ``max_retries``; other
  statuses fail at once. Errors name the URL and the status; the API key (read from the environment
  variable ``api_key_env``) never appears in errors, logs, configs or rows.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import os
import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .engine_config import EngineConfig, SamplingParams
from .protocol import EngineStats, GenerationOutput, GenerationProgress, Prompt, prefill_of
from .runner import derive_seed
from .server_loop import BusyClock, ClientLoop

logger = logging.getLogger(__name__)

#: HTTP statuses worth asking again: the server is busy, restarting or failed transiently.
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})


class ServerError(RuntimeError):
    """A request to the inference server failed for good; the message names the URL and the status."""


def _messages(prompt: Prompt) -> list[dict[str, str]]:
    if isinstance(prompt, str):
        return [{"role": "user", "content": prompt}]
    messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in prompt]
    if not messages:
        raise ValueError("A prompt needs at least one message")
    return messages


def _status(err: Exception) -> int | None:
    response = getattr(err, "response", None)
    return getattr(response, "status_code", None)


def _retry_after(err: Exception) -> float | None:
    response = getattr(err, "response", None)
    value = getattr(response, "headers", {}).get("retry-after") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _detail(err: Exception) -> str:
    """What the server said, without anything of the request (no headers, so no key)."""
    response = getattr(err, "response", None)
    text = ""
    try:
        text = response.text if response is not None else ""
    except Exception:  # noqa: BLE001 - a body that cannot be read is not worth a second error
        text = ""
    if not text:
        lines = str(err).splitlines()
        text = lines[0] if lines else type(err).__name__
    return " ".join(text.split())[:300]


@dataclass
class ServerEngine:
    """An :class:`~hf_synth.engine.Engine` whose completions come from an inference server.

    Build it with :meth:`from_config` (``EngineConfig(backend="server", base_url=...)``)."""

    base_url: str
    model_id: str
    more_urls: list[str] = field(default_factory=list)
    served_model: str | None = None
    concurrency: int = 64
    timeout: float = 600.0
    max_retries: int = 6
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    api_key: str | None = field(default=None, repr=False)
    stats: EngineStats = field(default_factory=EngineStats)
    backend: str = "server"
    continue_final_message: bool = True
    _warned: set[str] = field(default_factory=set, repr=False)
    #: Whether ``generate`` may be called from several threads at once (pipelines then overlap rounds
    #: and keep two calls per step in flight: see :func:`~hf_synth.engine.protocol.engine_workers`).
    #: ``EngineConfig.concurrent_calls`` (``--no-concurrent-calls``) sets it.
    concurrent_calls: bool = True
    # One event loop (in a thread of its own), one HTTP client and one gate of ``concurrency`` for every
    # call, also calls made at once from several threads (server_loop.py): connections are reused from
    # call to call and never more than ``concurrency`` requests are in flight in all.
    _session: Any = field(default=None, repr=False, compare=False)
    _start: Any = field(default_factory=threading.Lock, repr=False, compare=False)
    _clock: BusyClock = field(default_factory=BusyClock, repr=False, compare=False)

    @classmethod
    def from_config(cls, config: EngineConfig) -> ServerEngine:
        """Connect to ``config.base_url``; the served model is ``config.model`` or, when that is None, the
        first one the server lists at ``/v1/models``."""
        if not config.base_url:
            raise ValueError(
                "backend='server' needs the server's URL: --base-url http://host:port (base_url=)."
            )
        api_key = None
        if config.api_key_env:
            api_key = os.environ.get(config.api_key_env)
            if not api_key:
                raise ValueError(
                    f"--api-key-env {config.api_key_env}: that environment variable is not set; export "
                    "it with the server's key, or leave --api-key-env out for a server without keys."
                )
        urls = [url.strip().rstrip("/") for url in config.base_url.split(",") if url.strip()]
        engine = cls(
            base_url=urls[0],
            more_urls=urls[1:],
            model_id=config.model or "",
            served_model=config.model,
            concurrency=config.concurrency,
            timeout=config.request_timeout,
            max_retries=config.max_retries,
            api_key=api_key,
            concurrent_calls=config.concurrent_calls,
        )
        if not config.model:
            engine.served_model = engine.model_id = engine.list_models()[0]
        logger.info(
            "Engine: %s served at %s (up to %d requests in flight)",
            engine.model_id,
            ", ".join(engine.urls),
            engine.concurrency,
        )
        return engine

    # ------------------------------------------------------------------ description
    @property
    def max_concurrency(self) -> int:
        """Requests in flight at once (``concurrency``), the width a step fills per call."""
        return self.concurrency

    @property
    def urls(self) -> list[str]:
        """Every server this engine sends to (requests go round-robin over them)."""
        return [self.base_url, *self.more_urls]

    def describe(self) -> dict[str, Any]:
        """The model, the backend, and the servers' URLs as the device (dtype is the server's business)."""
        return {
            "model": self.model_id,
            "backend": self.backend,
            "dtype": "server",
            "device": ", ".join(self.urls),
        }

    def format_prompt(self, prompt: Prompt) -> str:
        """The messages sent (the server applies the chat template), as JSON: the journal's key."""
        return json.dumps(_messages(prompt), ensure_ascii=False)

    def list_models(self) -> list[str]:
        """The model names the server serves (``GET /v1/models``)."""
        http = _http_module()
        url = self._root() + "/v1/models"
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            response = http.get(url, headers=headers, timeout=min(self.timeout, 30.0))
            response.raise_for_status()
            names = [m["id"] for m in response.json()["data"]]
        except Exception as err:  # noqa: BLE001 - one message whatever failed
            status = _status(err)
            raise ServerError(
                f"Cannot list the models of {url}"
                + (f" (HTTP {status})" if status else f" ({type(err).__name__})")
                + "; is the server running? Name the model with --model to skip this question."
            ) from None
        if not names:
            raise ServerError(f"{url} lists no model; name the model with --model.")
        return names

    def _root(self) -> str:
        return self.base_url.removesuffix("/v1")

    # ------------------------------------------------------------------ generation
    def generate(
        self,
        prompts: Sequence[Prompt],
        sampling: SamplingParams | None = None,
        *,
        desc: str = "Generating",
        progress: bool = True,
        on_output: Callable[[int, GenerationOutput], None] | None = None,
    ) -> list[GenerationOutput]:
        """One completion per prompt, in the order of ``prompts``, ``concurrency`` requests at a time."""
        sampling = sampling or SamplingParams()
        if not prompts:
            return []
        with self._start:  # submitted under the lock, so close() cannot stop the loop in between
            if self._session is None:
                headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
                self._session = ClientLoop(
                    _http_module(), concurrency=self.concurrency, headers=headers, timeout=self.timeout
                )
            session = self._session
            self._clock.started()
            future = session.submit(
                self._generate_all(session, list(prompts), sampling, desc, progress, on_output)
            )
        outputs: list[GenerationOutput] = []
        try:
            outputs = future.result()
        except concurrent.futures.CancelledError:
            raise ServerError(
                f"{self.base_url}: the engine was closed while this call was in flight; its finished "
                "completions are journaled, rerun to ask the rest."
            ) from None
        except BaseException:
            future.cancel()  # the caller stopped (an error, Ctrl-C): its requests are abandoned
            raise
        finally:
            self.stats.add(outputs, self._clock.finished())
        return outputs

    def close(self) -> None:
        """Close the connections and stop the client's event loop (a later call starts them again). Calls
        still in flight in other threads are cancelled and raise :class:`ServerError`."""
        with self._start:
            session, self._session = self._session, None
        if session is not None:
            session.close()

    async def _generate_all(
        self, session, prompts, sampling, desc, progress, on_output
    ) -> list[GenerationOutput]:
        client, gate = session.client, session.gate
        outputs: list[GenerationOutput | None] = [None] * len(prompts)
        bar = GenerationProgress(len(prompts), desc, progress)
        urls = self.urls
        endpoints = [url.removesuffix("/v1") + "/v1/chat/completions" for url in urls]
        pending = iter(range(len(prompts)))

        # Workers take the next prompt as they finish one (no task per prompt); the gate, shared by every
        # call, keeps ``concurrency`` requests in flight in all, each on a pooled keep-alive connection.
        async def worker() -> None:
            for index in pending:
                which = index % len(urls)
                async with gate:
                    output = await self._with_retries(
                        client, endpoints[which], urls[which], prompts[index], sampling
                    )
                outputs[index] = output
                if on_output is not None:
                    on_output(index, output)
                bar.finished(output.completion_tokens)

        tasks = [asyncio.ensure_future(worker()) for _ in range(min(self.concurrency, len(prompts)))]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            bar.close()
        return [o for o in outputs if o is not None]

    async def _with_retries(
        self, client, endpoint: str, url: str, prompt: Prompt, sampling: SamplingParams
    ) -> GenerationOutput:
        for attempt in range(self.max_retries + 1):
            try:
                return await self._request(client, endpoint, url, prompt, sampling)
            except asyncio.CancelledError:
                raise
            except Exception as err:  # noqa: BLE001 - sorted into retryable or not just below
                status = _status(err)
                if status is not None and status not in RETRYABLE_STATUSES:
                    raise ServerError(self._refusal(url, status, err)) from None
                why = f"HTTP {status}" if status else type(err).__name__
                if attempt == self.max_retries:
                    raise ServerError(
                        f"{url}: {why} on {self.max_retries + 1} tries ({_detail(err)}); the "
                        "completions finished so far are journaled: rerun the same command when the "
                        "server is back."
                    ) from None
                wait = _retry_after(err) if status == 429 else None
                if wait is None:
                    wait = min(self.backoff_cap, self.backoff_base * 2**attempt) * (0.5 + random.random())
                logger.info("%s: %s; retrying in %.1fs (try %d)", url, why, wait, attempt + 2)
                await asyncio.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    def _refusal(self, url: str, status: int, err: Exception) -> str:
        detail = _detail(err)
        hint = ""
        if status in (400, 422):
            named = [p for p in ("top_k", "repetition_penalty") if p in detail]
            if named:
                hint = f" This server does not take {', '.join(named)}: leave it at its default (top_k=0, repetition_penalty=1.0)."
        elif status in (401, 403):
            hint = " Check the key in the environment variable named by --api-key-env."
        elif status == 404:
            hint = f" Is {self.served_model!r} the name the server serves (see {url.removesuffix('/v1')}/v1/models)?"
        return f"{url} refused the request (HTTP {status}): {detail}.{hint}"

    async def _request(
        self, client, endpoint: str, url: str, prompt: Prompt, sampling: SamplingParams
    ) -> GenerationOutput:
        messages = _messages(prompt)
        prefill = prefill_of(prompt)
        body: dict[str, Any] = {
            "model": self.served_model,
            "messages": messages,
            "max_tokens": sampling.max_new_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
        }
        if sampling.top_k:
            body["top_k"] = sampling.top_k
        if sampling.repetition_penalty != 1.0:
            body["repetition_penalty"] = sampling.repetition_penalty
        if prefill and self.continue_final_message:
            body.update(continue_final_message=True, add_generation_prompt=False)
        elif prefill:
            body["messages"] = messages = messages[:-1]
        if sampling.do_sample:  # greedy decoding has nothing to seed (vLLM's CPU build refuses seeds)
            body["seed"] = derive_seed(sampling.seed, [json.dumps(messages, ensure_ascii=False)])
        if body["model"] is None:
            del body["model"]
        try:
            response = await client.post(endpoint, json=body)
            response.raise_for_status()
        except Exception as err:
            if prefill and self.continue_final_message and _status(err) in (400, 422):
                self.continue_final_message = False
                logger.warning(
                    "%s does not continue an assistant prefill (continue_final_message); sending such "
                    "prompts without it and removing the prefill from replies that repeat it",
                    url,
                )
                return await self._request(client, endpoint, url, prompt, sampling)
            raise
        return self._output(response.json(), prefill if not self.continue_final_message else "")

    def _output(self, reply: Any, repeated_prefill: str) -> GenerationOutput:
        try:
            choice = reply["choices"][0]
            text = choice["message"]["content"] or ""
            finish = choice.get("finish_reason")
            usage = reply.get("usage")
        except (AttributeError, IndexError, TypeError, KeyError) as err:
            raise ValueError(f"malformed completion body ({type(err).__name__})") from None
        if repeated_prefill and text.lstrip().startswith(repeated_prefill.strip()):
            text = text.lstrip()[len(repeated_prefill.strip()) :]
        counts = [
            usage.get(name) if isinstance(usage, dict) else None
            for name in ("prompt_tokens", "completion_tokens")
        ]
        counts = [c if isinstance(c, int) and not isinstance(c, bool) and c >= 0 else None for c in counts]
        if None in counts and "usage" not in self._warned:
            self._warned.add("usage")
            logger.warning(
                "%s returned no usable token counts (usage=%r); missing counts are taken as 0, so the "
                "tok/s of this run understate the server",
                self.base_url,
                usage,
            )
        prompt_tokens, completion_tokens = (c or 0 for c in counts)
        return GenerationOutput(
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            finish_reason="length" if finish == "length" else "stop",
        )


def _http_module():
    """httpx2 (what huggingface_hub 1.x+ is built on, so always installed with it), or httpx where an
    environment has only that; both are public packages with the same API."""
    try:
        import httpx2

        return httpx2
    except ImportError:  # pragma: no cover - an environment with httpx instead
        import httpx

        return httpx
