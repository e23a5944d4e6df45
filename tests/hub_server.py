"""A local HTTP server that speaks the Hub endpoints huggingface_hub uses to create a dataset repo, upload a
folder in one commit, and download a file, so the real push code path runs without the network.

Tokens: ``hf_write_me`` may write under the namespace ``me``; ``hf_read_only`` may only read (403 on
writes); anything else is refused (401).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

WRITE_TOKEN = "hf_write_me"
READ_TOKEN = "hf_read_only"


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, dict] = {}  # repo_id -> {"type", "private", "files": {path: bytes}}
        self.requests: list[str] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _token(self) -> str | None:
                header = self.headers.get("authorization", "")
                return header[7:] if header.lower().startswith("bearer ") else None

            def _reply(self, status: int, body: bytes | dict = b"", headers: dict | None = None) -> None:
                data = json.dumps(body).encode() if isinstance(body, dict) else body
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                if isinstance(body, dict):
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            def _auth_write(self, namespace: str) -> bool:
                token = self._token()
                if token not in (WRITE_TOKEN, READ_TOKEN):
                    self._reply(401, {"error": "Invalid credentials in Authorization header"})
                    return False
                if token == READ_TOKEN or namespace != "me":
                    self._reply(403, {"error": "You don't have the rights to create or write this repo"})
                    return False
                return True

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def do_POST(self):  # noqa: N802
                hub.requests.append(f"POST {self.path}")
                path = self.path.split("?")[0]
                if path == "/api/validate-yaml":  # the Hub checks README metadata before a commit
                    payload = json.loads(self._body())
                    content = payload.get("content", "")
                    ok = content.startswith("---\n") and "\n---\n" in content[4:]
                    self._reply(
                        200 if ok else 400,
                        {"errors": [] if ok else [{"message": "no YAML header"}], "warnings": []},
                    )
                    return
                if path == "/api/repos/create":
                    payload = json.loads(self._body())
                    repo_id = f"{payload.get('organization') or 'me'}/{payload['name']}"
                    if not self._auth_write(repo_id.split("/")[0]):
                        return
                    if repo_id in hub.repos:
                        self._reply(409, {"error": "You already created this dataset repo", "url": repo_id})
                        return
                    hub.repos[repo_id] = {
                        "type": payload.get("type"),
                        "private": payload.get("visibility") == "private",
                        "files": {},
                    }
                    self._reply(200, {"url": f"{hub.endpoint}/datasets/{repo_id}", "name": repo_id})
                    return
                parts = path.split("/")  # /api/datasets/{ns}/{name}/{preupload|commit}/{rev}
                if len(parts) >= 7 and parts[1] == "api" and parts[2] == "datasets":
                    repo_id, action = f"{parts[3]}/{parts[4]}", parts[5]
                    body = self._body()
                    if not self._auth_write(parts[3]):
                        return
                    if repo_id not in hub.repos:
                        self._reply(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                        return
                    if action == "preupload":
                        files = json.loads(body)["files"]
                        self._reply(
                            200,
                            {
                                "files": [
                                    {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                    for f in files
                                ]
                            },
                        )
                        return
                    if action == "commit":
                        for line in body.splitlines():
                            item = json.loads(line)
                            if item["key"] == "deletedFile":
                                hub.repos[repo_id]["files"].pop(item["value"]["path"], None)
                            if item["key"] == "file":
                                value = item["value"]
                                hub.repos[repo_id]["files"][value["path"]] = base64.b64decode(
                                    value["content"]
                                )
                        self._reply(
                            200,
                            {
                                "commitUrl": f"{hub.endpoint}/datasets/{repo_id}/commit/{'a' * 40}",
                                "commitOid": "a" * 40,
                            },
                        )
                        return
                self._reply(404, {"error": f"unknown endpoint {path}"})

            def do_GET(self):  # noqa: N802
                hub.requests.append(f"{self.command} {self.path}")
                path = self.path.split("?")[0]
                parts = path.split("/")  # /api/datasets/{ns}/{name}/tree/{rev}[/{folder}]: the file listing
                if len(parts) >= 7 and parts[1] == "api" and parts[2] == "datasets" and parts[5] == "tree":
                    repo = hub.repos.get(f"{parts[3]}/{parts[4]}")
                    if repo is None:
                        self._reply(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                        return
                    prefix = "/".join(parts[7:])
                    entries = [
                        {
                            "type": "file",
                            "path": name,
                            "size": len(data),
                            "oid": hashlib.sha1(data).hexdigest(),
                        }
                        for name, data in sorted(repo["files"].items())
                        if not prefix or name.startswith(prefix + "/")
                    ]
                    self._reply(200, json.dumps(entries).encode(), {"Content-Type": "application/json"})
                    return
                parts = path.split("/")  # /datasets/{ns}/{name}/resolve/{rev}/{file...}
                if len(parts) >= 7 and parts[1] == "datasets" and parts[4] == "resolve":
                    repo_id, file = f"{parts[2]}/{parts[3]}", "/".join(parts[6:])
                    repo = hub.repos.get(repo_id)
                    if repo is None:
                        self._reply(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                        return
                    if file not in repo["files"]:
                        self._reply(404, {"error": "Entry not found"}, {"X-Error-Code": "EntryNotFound"})
                        return
                    data = repo["files"][file]
                    etag = hashlib.sha1(data).hexdigest()
                    self._reply(
                        200,
                        data,
                        {
                            "ETag": f'"{etag}"',
                            "X-Repo-Commit": "a" * 40,
                            "Content-Type": "application/octet-stream",
                        },
                    )
                    return
                self._reply(404, {"error": f"unknown endpoint {path}"})

            do_HEAD = do_GET  # noqa: N815

        return Handler
