"""The review page's local web server: a static page plus a small JSON API over a :class:`ReviewSet`.

Built on the standard library's threading HTTP server: nothing to install, nothing fetched from elsewhere
(the page's script and style are served from this package) and every response under our own security
headers. It listens on 127.0.0.1 and refuses requests from other hosts, requests whose ``Host`` is not
a loopback name (DNS rebinding) and writes from other origins, unless ``allow_remote`` is set. The page
shows every text with ``textContent``, never as HTML, and a strict Content-Security-Policy forbids
inline script as a second line of defence.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .decisions import EDITABLE, REJECT_REASONS, Decision, DecisionConflict
from .review_set import META_COLUMNS, ReviewItem, ReviewSet

logger = logging.getLogger(__name__)

_STATIC = {
    "/": ("review.html", "text/html; charset=utf-8"),
    "/static/review.js": ("review.js", "text/javascript; charset=utf-8"),
    "/static/review.css": ("review.css", "text/css; charset=utf-8"),
}
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
MAX_BODY = 4 * 1024 * 1024
_SHORT = 140


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


class ReviewApp:
    """What the API answers, independent of HTTP (so it is testable without a browser)."""

    def __init__(self, review: ReviewSet, *, reviewer: str | None = None) -> None:
        self.review = review
        self.reviewer = reviewer

    def _status(self, item: ReviewItem) -> str:
        decision = self.review.decision(item.key)
        return decision.decision if decision else "unreviewed"

    def state(self) -> dict[str, Any]:
        items = self.review.items
        return {
            "run": str(self.review.run_dir),
            "reviewer": self.reviewer,
            "progress": self.review.progress(),
            "reject_reasons": list(REJECT_REASONS),
            "session": {k: v for k, v in self.review.session.items() if k != "rows"},
            "rows": [
                {
                    "key": item.key,
                    "kind": item.kind,
                    "status": self._status(item),
                    "skill": item.skill,
                    "operation": item.operation,
                    "reasons": item.reasons,
                    "title": " ".join((item.row.get("instruction") or "").split())[:_SHORT],
                }
                for item in items
            ],
        }

    def row(self, key: str) -> dict[str, Any]:
        item = self.review.by_key.get(key)
        if item is None:
            raise KeyError(key)
        row = item.row
        decision = self.review.decision(key)
        scores = {}
        for name in ("scores", "judge"):
            if isinstance(row.get(name), dict):
                scores.update({f"{name}.{k}": v for k, v in row[name].items() if v is not None})
        if row.get("skill_confidence") is not None:
            scores["skill_confidence"] = row["skill_confidence"]
        return _json_safe(
            {
                "key": key,
                "kind": item.kind,
                "fields": {f: row.get(f) or "" for f in EDITABLE if f in row or f != "input"},
                "skill": item.skill,
                "operation": item.operation,
                "reasons": item.reasons,
                "meta": {c: row[c] for c in META_COLUMNS if row.get(c) not in (None, "")},
                "id": row.get("id"),
                "scores": scores,
                "lineage": self.review.lineage(item),
                "text_hash": item.text_hash,
                "decision": decision.to_json() if decision else None,
            }
        )

    def decide(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        key = body.get("key")
        item = self.review.by_key.get(key) if isinstance(key, str) else None
        if item is None:
            return 404, {"error": f"no row {key!r} in this review"}
        if body.get("text_hash") != item.text_hash:
            return 409, {"error": "the row's text changed on disk since the page loaded it; reload"}
        edits = body.get("edits") or {}
        if not isinstance(edits, dict):
            return 400, {"error": "edits must be an object of field: text"}
        changed = {f: v for f, v in edits.items() if v != (item.row.get(f) or "")}
        decision_name = body.get("decision")
        if decision_name == "edited" and not changed:
            return 400, {"error": "nothing was changed; use Accept to keep the row as it is"}
        if item.kind == "rejected" and decision_name == "edited":
            return 400, {"error": "rows the run's filters dropped can be judged (accept/reject), not edited"}
        try:
            decision = Decision(
                row=item.key,
                text_hash=item.text_hash,
                decision=decision_name,
                reason=body.get("reason"),
                edits=changed,
                reviewer=body.get("reviewer") or self.reviewer,
                base=body.get("base"),
            )
            self.review.log.append(decision)
        except DecisionConflict as conflict:
            current = conflict.current
            return 409, {
                "error": "another tab decided this row meanwhile; its decision is shown, decide again if needed",
                "current": current.to_json() if current and current.text_hash == item.text_hash else None,
            }
        except (ValueError, TypeError) as err:
            return 400, {"error": str(err)}
        return 200, {"decision": decision.to_json(), "progress": self.review.progress()}


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


class _Handler(BaseHTTPRequestHandler):
    server: ReviewServer
    server_version = "hf-synth-review"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        logger.debug("%s %s", self.address_string(), format % args)

    # ------------------------------------------------------------ plumbing
    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Content-Security-Policy", _CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, data: dict[str, Any]) -> None:
        self._send(status, json.dumps(data, ensure_ascii=False).encode("utf-8"), "application/json")

    def _allowed(self) -> bool:
        if self.server.allow_remote:
            return True
        if not _is_loopback(self.client_address[0]):
            self._json(403, {"error": "this review server accepts local connections only"})
            return False
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0].strip("[]").lower()
        if host not in _LOOPBACK_NAMES and not _is_loopback(host):
            self._json(403, {"error": f"unexpected Host {host!r}; open the page as http://127.0.0.1:PORT/"})
            return False
        return True

    def _same_origin(self) -> bool:
        origin = self.headers.get("Origin")
        if origin and urlsplit(origin).netloc != self.headers.get("Host"):
            return False
        return self.headers.get("Sec-Fetch-Site", "same-origin") in ("same-origin", "none")

    # ------------------------------------------------------------- routes
    def do_GET(self) -> None:  # noqa: N802 - the base class's name
        if not self._allowed():
            return
        url = urlsplit(self.path)
        if url.path in _STATIC:
            name, content_type = _STATIC[url.path]
            body = resources.files(__package__).joinpath("static", name).read_bytes()
            self._send(200, body, content_type)
        elif url.path == "/favicon.ico":
            self._send(204, b"", "image/x-icon")
        elif url.path == "/api/progress":
            self._json(200, self.server.app.review.progress())
        elif url.path == "/api/state":
            self._json(200, self.server.app.state())
        elif url.path == "/api/row":
            key = parse_qs(url.query).get("key", [""])[0]
            try:
                self._json(200, self.server.app.row(key))
            except KeyError:
                self._json(404, {"error": f"no row {key!r} in this review"})
        else:
            self._json(404, {"error": f"no page {url.path}"})

    def do_POST(self) -> None:  # noqa: N802 - the base class's name
        if not self._allowed():
            return
        if urlsplit(self.path).path != "/api/decide":
            self._json(404, {"error": "unknown endpoint"})
            return
        if not self._same_origin():
            self._json(403, {"error": "decisions are accepted from the review page only"})
            return
        if self.headers.get_content_type() != "application/json":
            self._json(415, {"error": "send JSON (Content-Type: application/json)"})
            return
        length = int(self.headers.get("Content-Length") or 0)
        if length <= 0 or length > MAX_BODY:
            self._json(413, {"error": f"the body must hold 1 to {MAX_BODY} bytes"})
            return
        try:
            body = json.loads(self.rfile.read(length))
        except (ValueError, UnicodeDecodeError):
            self._json(400, {"error": "the body is not valid JSON"})
            return
        if not isinstance(body, dict):
            self._json(400, {"error": "the body must be a JSON object"})
            return
        status, data = self.server.app.decide(body)
        self._json(status, data)

    def do_PUT(self) -> None:  # noqa: N802
        self._json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "method not allowed"})

    do_DELETE = do_PATCH = do_PUT  # noqa: N815


class ReviewServer(ThreadingHTTPServer):
    """A review page for one :class:`ReviewSet`; ``url`` is where to open it."""

    daemon_threads = True
    thread: threading.Thread | None = None

    def __init__(
        self, app: ReviewApp, host: str = "127.0.0.1", port: int = 7860, *, allow_remote: bool = False
    ):
        if not allow_remote and not (host in _LOOPBACK_NAMES or _is_loopback(host)):
            raise ValueError(
                f"--host {host} would let other machines reach the review page; pass --allow-remote too "
                "if that is what you want (the page has no login)."
            )
        try:
            super().__init__((host, port), _Handler)
        except OSError as err:
            raise OSError(f"cannot listen on {host}:{port} ({err.strerror}); pick another --port") from None
        self.app = app
        self.allow_remote = allow_remote
        shown = "127.0.0.1" if host in ("localhost", "127.0.0.1") else host
        self.url = f"http://{shown if ':' not in shown else f'[{shown}]'}:{self.server_address[1]}/"

    def start_background(self) -> threading.Thread:
        """Serve in a daemon thread (the CLI, tests, notebooks); stop with :meth:`close`."""
        self.thread = threading.Thread(target=self.serve_forever, name="hf-synth-review", daemon=True)
        self.thread.start()
        return self.thread

    def close(self) -> None:
        """Stop serving, close the socket and the decisions file (every decision is already on disk)."""
        if getattr(self, "thread", None) is not None:
            self.shutdown()
            self.thread.join()
            self.thread = None
        self.server_close()
        self.app.review.close()


def serve_review(run_dir, config=None, *, restart: bool = False, block: bool = True) -> ReviewServer:
    """Open the review of an hf-synth run folder and serve its page (see :class:`ReviewConfig`).

    With ``block`` it serves until Ctrl+C, then closes; otherwise the server runs in a background thread and
    is returned (its ``url`` is the page; stop it with ``close()``)."""
    from .review_config import ReviewConfig

    config = config or ReviewConfig()
    review = ReviewSet(
        run_dir,
        sample=config.sample,
        seed=config.seed,
        include_rejected=config.include_rejected,
        skills=config.skills,
        background_skills=True,
        restart=restart,
    )
    try:
        server = ReviewServer(
            ReviewApp(review, reviewer=config.reviewer),
            config.host,
            config.port,
            allow_remote=config.allow_remote,
        )
    except Exception:
        review.close()
        raise
    progress = review.progress()
    logger.info(
        "Review of %s at %s: %d rows, %d reviewed; decisions go to %s",
        run_dir,
        server.url,
        progress["total"],
        progress["reviewed"],
        review.log.path,
    )
    server.start_background()
    if config.skills and review.unlabelled():
        logger.info("Labelling the skills of %d rows in the background", len(review.unlabelled()))
        review.label_skills_in_background()
    if block:
        try:
            while server.thread is not None and server.thread.is_alive():
                server.thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            server.close()
    return server
