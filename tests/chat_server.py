"""A local (loopback only) server that speaks the chat-completions protocol of vLLM, TGI and OpenAI, with
faults to inject, so the server backend's real client path runs in tests without a model.

``reply(messages, body) -> str`` writes each completion. ``faults`` is a list consumed one per request,
in arrival order: ``None`` (answer), ``"429"`` (rate limited, ``Retry-After: 0``), ``"500"``, ``"503"``,
``"broken"`` (a 200 whose JSON body is cut short), ``"disconnect"`` (the connection closes without an
answer), ``"no_usage"`` (an answer without token counts), ``"slow"`` (an answer after ``slow_seconds``,
or when the server stops, whichever comes first).
``gate = n`` holds the first requests until ``n`` are in flight at once (then, after ``gate_grace``
seconds in which a client that sends more would show it, lets everything through): concurrency seen as a
count, whatever the machine's speed; ``gate_reached`` says whether it happened within ``gate_timeout``.
``refuse`` names request fields the server answers with 400 (e.g. ``top_k``, ``continue_final_message``).
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class FakeChatServer:
    def __init__(self, reply=None, *, model: str = "fake-model", port: int = 0, api_key: str | None = None):
        self.reply = reply or (lambda messages, body: f"echo: {messages[-1]['content'][:40]}")
        self.model = model
        self.api_key = api_key
        self.faults: list[str | None] = []
        self.refuse: set[str] = set()
        self.slow_seconds = 0.0
        self.delay = 0.0  # every answer waits this long (to see concurrency)
        self.bodies: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.answered = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.gate = 0
        self.gate_grace = 0.2
        self.gate_timeout = 30.0
        self.gate_reached = False
        self._gate_open = False
        self._lock = threading.Lock()
        self._gate = threading.Condition(self._lock)
        self._stopping = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeChatServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        self._stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def _pass_gate(self) -> None:
        with self._gate:
            if self._gate_open:
                return
            if self.in_flight < self.gate:
                if not self._gate.wait_for(lambda: self._gate_open, timeout=self.gate_timeout):
                    self._gate_open = True  # never reached: let everything through, gate_reached stays False
                    self._gate.notify_all()
                return
        time.sleep(self.gate_grace)  # a client that sends more than ``gate`` at once shows it now
        with self._gate:
            self._gate_open = self.gate_reached = True
            self._gate.notify_all()

    def _next_fault(self) -> str | None:
        with self._lock:
            return self.faults.pop(0) if self.faults else None

    def _handler(self):
        chat = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def _authorised(self) -> bool:
                if chat.api_key and self.headers.get("Authorization") != f"Bearer {chat.api_key}":
                    self._send(401, json.dumps({"error": "Invalid API key"}).encode())
                    return False
                return True

            def do_GET(self):  # noqa: N802
                if not self._authorised():
                    return
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, json.dumps({"object": "list", "data": [{"id": chat.model}]}).encode())
                else:
                    self._send(404, json.dumps({"error": f"no route {self.path}"}).encode())

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if not self._authorised():
                    return
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self._send(404, json.dumps({"error": f"no route {self.path}"}).encode())
                    return
                with chat._lock:
                    chat.bodies.append(body)
                    chat.headers.append({k.lower(): v for k, v in self.headers.items()})
                    chat.in_flight += 1
                    chat.max_in_flight = max(chat.max_in_flight, chat.in_flight)
                try:
                    if chat.gate:
                        chat._pass_gate()
                    self._answer(body)
                finally:
                    with chat._lock:
                        chat.in_flight -= 1

            def _answer(self, body: dict) -> None:
                refused = sorted(chat.refuse & set(body))
                if refused:
                    self._send(400, json.dumps({"error": f"unsupported parameter(s): {refused}"}).encode())
                    return
                if body.get("model") != chat.model:
                    self._send(
                        404, json.dumps({"error": f"The model {body.get('model')} does not exist"}).encode()
                    )
                    return
                fault = chat._next_fault()
                if chat.delay:
                    time.sleep(chat.delay)
                if fault in ("429", "500", "503"):
                    headers = {"Retry-After": "0"} if fault == "429" else {}
                    self._send(int(fault), json.dumps({"error": f"injected {fault}"}).encode(), headers)
                    return
                if fault == "disconnect":
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                if fault == "slow":
                    chat._stopping.wait(chat.slow_seconds)
                messages = body["messages"]
                text = chat.reply(messages, body)
                completion = len(text.split())
                limit = body.get("max_tokens") or 10**9
                finish = "stop"
                if completion > limit:
                    text, completion, finish = " ".join(text.split()[:limit]), limit, "length"
                payload = {
                    "id": "cmpl-1",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": chat.model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": finish,
                        }
                    ],
                    "usage": {
                        "prompt_tokens": sum(len(m["content"].split()) for m in messages),
                        "completion_tokens": completion,
                        "total_tokens": 0,
                    },
                }
                if fault == "no_usage":
                    del payload["usage"]
                data = json.dumps(payload).encode()
                if fault == "broken":
                    data = data[: len(data) // 2]
                    self._send(200, data)
                    return
                with chat._lock:
                    chat.answered += 1
                self._send(200, data)

        return Handler
