"""A local HTTP server that speaks the Hub endpoints huggingface_hub uses to create a dataset repo, upload a
folder in one commit, and download a file, so the real push code path runs without the network.

Uploads follow the Hub's protocol: the preupload answer sends ``.parquet`` files through LFS (the batch
endpoint, a PUT of the object, a verify call; the commit then names them by sha256), other files go inline
in the commit. Every commit gets its own id (``repo["commits"]``), and the repo info, tree, paths-info
and resolve endpoints answer for the latest one, so ``load_dataset("me/name")`` reads a push back through
this server. (Xet storage is not spoken: huggingface_hub's Xet uploads are off while the server runs.)

Tokens: ``hf_write_me`` may write under the namespace ``me``; ``hf_read_only`` may only read (403 on
writes); anything else is refused (401).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

WRITE_TOKEN = "hf_write_me"
READ_TOKEN = "hf_read_only"


class FakeHub:
    def __init__(self) -> None:
        self.repos: dict[str, dict] = {}  # repo_id -> {"type", "private", "files": {path: bytes}, "commits"}
        self.requests: list[str] = []
        self.lfs: dict[str, bytes] = {}  # sha256 -> the object uploaded through LFS
        self.lfs_uploads = 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        from huggingface_hub import constants

        # This server speaks LFS, not Xet: uploads take huggingface_hub's LFS path while it runs.
        self._xet, constants.HF_HUB_DISABLE_XET = constants.HF_HUB_DISABLE_XET, True
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        from huggingface_hub import constants

        constants.HF_HUB_DISABLE_XET = self._xet
        self.server.shutdown()
        self.server.server_close()

    def new_commit_id(self, repo_id: str) -> str:
        """A commit id never seen before, as the Hub's are. Ids that repeat from one test run to the next
        (the repo's name and a counter) let huggingface_hub's cache in ``~/.cache/huggingface`` answer a
        later run with an earlier run's files of the same commit id (snapshots are keyed by commit)."""
        return hashlib.sha1(f"{repo_id} {uuid.uuid4()}".encode()).hexdigest()

    def edit(self, repo_id: str, path: str, data: bytes) -> None:
        """A commit of the repo's owner, made on the website (a new commit id, as on the Hub)."""
        repo = self.repos[repo_id]
        repo["files"][path] = data
        repo["lfs_paths"].discard(path)
        repo["commits"].append(self.new_commit_id(repo_id))

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
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                        if size == 0:
                            self.rfile.readline()
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def _lfs_batch(self, repo_id: str) -> None:
                payload = json.loads(self._body())
                if not self._auth_write(repo_id.split("/")[0]):
                    return
                objects = []
                for item in payload["objects"]:
                    answer = {"oid": item["oid"], "size": item["size"]}
                    if item["oid"] not in hub.lfs:  # already stored objects need no upload
                        answer["actions"] = {
                            "upload": {"href": f"{hub.endpoint}/lfs-objects/{item['oid']}"},
                            "verify": {"href": f"{hub.endpoint}/lfs-verify/{item['oid']}"},
                        }
                    objects.append(answer)
                self._reply(200, {"transfer": "basic", "objects": objects})

            def do_PUT(self):  # noqa: N802 - an LFS object upload (basic transfer)
                hub.requests.append(f"PUT {self.path}")
                oid = self.path.split("?")[0].removeprefix("/lfs-objects/")
                data = self._body()
                if hashlib.sha256(data).hexdigest() != oid:
                    self._reply(400, {"error": "the uploaded object does not match its sha256"})
                    return
                hub.lfs[oid] = data
                hub.lfs_uploads += 1
                self._reply(200, b"")

            def _commit(self, repo_id: str, body: bytes) -> None:
                repo = hub.repos[repo_id]
                lines = [json.loads(line) for line in body.splitlines() if line.strip()]
                missing = [
                    item["value"]["oid"]
                    for item in lines
                    if item["key"] == "lfsFile" and item["value"]["oid"] not in hub.lfs
                ]
                if missing:
                    self._reply(422, {"error": f"LFS objects were never uploaded: {missing}"})
                    return
                for item in lines:
                    value = item["value"]
                    if item["key"] == "deletedFile":
                        repo["files"].pop(value["path"], None)
                    elif item["key"] == "deletedFolder":
                        folder = value["path"].rstrip("/") + "/"
                        for name in [n for n in repo["files"] if n.startswith(folder)]:
                            del repo["files"][name]
                    elif item["key"] == "file":
                        repo["files"][value["path"]] = base64.b64decode(value["content"])
                    elif item["key"] == "lfsFile":
                        repo["files"][value["path"]] = hub.lfs[value["oid"]]
                        repo["lfs_paths"].add(value["path"])
                oid = hub.new_commit_id(repo_id)
                repo["commits"].append(oid)
                url = f"{hub.endpoint}/datasets/{repo_id}/commit/{oid}"
                self._reply(200, {"commitUrl": url, "commitOid": oid})

            def _entry(self, repo: dict, name: str) -> dict:
                data = repo["files"][name]
                entry = {
                    "type": "file",
                    "path": name,
                    "size": len(data),
                    "oid": hashlib.sha1(data).hexdigest(),
                }
                if name in repo["lfs_paths"]:
                    entry["lfs"] = {
                        "oid": hashlib.sha256(data).hexdigest(),
                        "size": len(data),
                        "pointerSize": 130,
                    }
                return entry

            def do_POST(self):  # noqa: N802
                hub.requests.append(f"POST {self.path}")
                path = self.path.split("?")[0]
                if path.startswith("/lfs-verify/"):
                    oid = path.removeprefix("/lfs-verify/")
                    self._body()
                    self._reply(200 if oid in hub.lfs else 404, {"ok": oid in hub.lfs})
                    return
                if path.startswith("/datasets/") and path.endswith(".git/info/lfs/objects/batch"):
                    self._lfs_batch(
                        path.removeprefix("/datasets/").removesuffix(".git/info/lfs/objects/batch")
                    )
                    return
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
                        "lfs_paths": set(),
                        "commits": [],
                    }
                    self._reply(200, {"url": f"{hub.endpoint}/datasets/{repo_id}", "name": repo_id})
                    return
                parts = path.split("/")  # /api/datasets/{ns}/{name}/{preupload|commit|paths-info}/{rev}
                if (
                    len(parts) >= 7
                    and parts[1] == "api"
                    and parts[2] == "datasets"
                    and parts[5] == "paths-info"
                ):
                    repo = hub.repos.get(f"{parts[3]}/{parts[4]}")
                    form = parse_qs(self._body().decode())
                    if repo is None:
                        self._reply(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                        return
                    asked = form.get("paths", [])
                    entries = [self._entry(repo, p) for p in asked if p in repo["files"]]
                    folders = {
                        p for p in asked if any(n.startswith(p.rstrip("/") + "/") for n in repo["files"])
                    }
                    entries += [{"type": "directory", "path": p, "oid": "0" * 40} for p in sorted(folders)]
                    self._reply(200, json.dumps(entries).encode(), {"Content-Type": "application/json"})
                    return
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
                                    {
                                        "path": f["path"],
                                        # the Hub's .gitattributes sends parquet through LFS
                                        "uploadMode": "lfs" if f["path"].endswith(".parquet") else "regular",
                                        "shouldIgnore": False,
                                    }
                                    for f in files
                                ]
                            },
                        )
                        return
                    if action == "commit":
                        self._commit(repo_id, body)
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
                    names = [n for n in sorted(repo["files"]) if not prefix or n.startswith(prefix + "/")]
                    recursive = parse_qs(urlparse(self.path).query).get("recursive", ["false"])[0] == "true"
                    entries, folders = [], set()
                    for name in names:
                        rest = name[len(prefix) + 1 :] if prefix else name
                        if "/" in rest and not recursive:  # a folder below: listed once, as a directory
                            folders.add(f"{prefix}/{rest.split('/')[0]}" if prefix else rest.split("/")[0])
                            continue
                        entries.append(self._entry(repo, name))
                        for depth in range(rest.count("/")):  # recursive: its folders too
                            folder = "/".join(rest.split("/")[: depth + 1])
                            folders.add(f"{prefix}/{folder}" if prefix else folder)
                    entries += [{"type": "directory", "path": f, "oid": "0" * 40} for f in sorted(folders)]
                    self._reply(200, json.dumps(entries).encode(), {"Content-Type": "application/json"})
                    return
                # /api/datasets/{ns}/{name}[/revision/{rev}]: the repo's info at its latest commit
                if len(parts) in (5, 7) and parts[1] == "api" and parts[2] == "datasets":
                    repo = hub.repos.get(f"{parts[3]}/{parts[4]}")
                    if repo is None or (len(parts) == 7 and parts[5] != "revision"):
                        self._reply(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                        return
                    info = {
                        "id": f"{parts[3]}/{parts[4]}",
                        "sha": repo["commits"][-1] if repo["commits"] else "0" * 40,
                        "private": repo["private"],
                        "siblings": [{"rfilename": name} for name in sorted(repo["files"])],
                        "tags": [],
                    }
                    self._reply(200, info)
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
                    headers = {
                        "ETag": f'"{etag}"',
                        "X-Repo-Commit": repo["commits"][-1] if repo["commits"] else "0" * 40,
                        "Content-Type": "application/octet-stream",
                    }
                    if file in repo["lfs_paths"]:
                        headers["X-Linked-Etag"] = f'"{hashlib.sha256(data).hexdigest()}"'
                        headers["X-Linked-Size"] = str(len(data))
                    self._reply(200, data, headers)
                    return
                self._reply(404, {"error": f"unknown endpoint {path}"})

            do_HEAD = do_GET  # noqa: N815

        return Handler
