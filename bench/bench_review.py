"""The review page at scale: a run of 40,972 rows (the T0 prompts beside the project, as instructions with
a short output), served by ``hf-synth review`` and driven over HTTP as the page drives it.

Measured, each beside a baseline from the same run:

* opening the review (reading the run, the session, the decisions file); baseline: ``load_from_disk`` of
  the same dataset; how soon the page answers when every row's skill is still to be labelled (in the
  background), how long that labelling takes, and reopening once the labels are cached;
* ``GET /api/state`` (every row's key, status, skill, title: what the page loads once) and ``GET /api/row``;
* ``POST /api/decide`` latency (p50, p95 over 300 decisions while skills are labelled, 300 after; each
  fsynced); baseline: appending and fsyncing the same line to a plain file, the floor of "nothing is lost";
* ``--apply`` (reviewed dataset, rejected rows, figures, card); baseline: ``save_run`` of the dataset.

    python bench/bench_review.py [--rows 40972] [--decisions 300]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "t0_prompts_41k.jsonl"


def _request(port: int, method: str, path: str, body: dict | None = None) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    payload = json.dumps(body).encode() if body is not None else None
    connection.request(method, path, body=payload, headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, data


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40972)
    parser.add_argument("--decisions", type=int, default=300)
    args = parser.parse_args()
    if not DATA.is_file():
        raise SystemExit(f"{DATA} is missing: this benchmark needs the shared data beside the project")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from datasets import Dataset, disable_progress_bars, load_from_disk

    from hf_synth.engine.cpu.info import cpu_info
    from hf_synth.io import save_run
    from hf_synth.review import ReviewConfig, ReviewSet, apply_review, save_reviewed, serve_review

    disable_progress_bars()
    info = cpu_info()
    print(f"CPU: {info.model}, {os.cpu_count()} cores, ISA {info.detected_isa} (used {info.used_isa})")
    texts = [json.loads(line)["instruction"] for line in DATA.read_text(encoding="utf-8").splitlines()]
    texts = texts[: args.rows]
    rows = [
        {"id": f"t0-{i:05d}", "instruction": t, "input": "", "output": f"Answer {i}.", "source": "t0"}
        for i, t in enumerate(texts)
    ]
    work = Path(tempfile.mkdtemp(prefix="hf-synth-bench-review-"))
    results: dict = {"cpu": info.model, "isa": info.detected_isa, "rows": len(rows)}
    try:
        run = work / "run"
        save_run(run, Dataset.from_list(rows))

        started = time.perf_counter()
        load_from_disk(str(run / "dataset")).to_list()
        results["baseline_load_s"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        ReviewSet(run, skills=False).close()
        results["open_no_skills_s"] = round(time.perf_counter() - started, 3)
        shutil.rmtree(run / "review")

        def decide_many(port: int, keys: list[str], offset: int) -> tuple[list[float], list[float]]:
            row_times, decide_times = [], []
            for i, key in enumerate(keys):
                started = time.perf_counter()
                status, body = _request(port, "GET", f"/api/row?key={key}")
                row_times.append(time.perf_counter() - started)
                row = json.loads(body)
                decision = ["accepted", "rejected", "edited"][(i + offset) % 3]
                payload = {"key": key, "text_hash": row["text_hash"], "decision": decision, "base": None}
                if decision == "rejected":
                    payload["reason"] = "wrong_output"
                if decision == "edited":
                    payload["edits"] = {"output": f"Corrected answer {i}."}
                started = time.perf_counter()
                status, _ = _request(port, "POST", "/api/decide", payload)
                decide_times.append(time.perf_counter() - started)
                assert status == 200, status
            return row_times, decide_times

        # The page with skills labelled in the background: how soon it answers, how it answers meanwhile.
        started = time.perf_counter()
        server = serve_review(run, ReviewConfig(port=0), block=False)
        port = server.server_address[1]
        assert _request(port, "GET", "/")[0] == 200
        results["time_to_page_s"] = round(time.perf_counter() - started, 3)
        try:
            started = time.perf_counter()
            status, body = _request(port, "GET", "/api/state")
            results["state_s"] = round(time.perf_counter() - started, 3)
            results["state_mb"] = round(len(body) / 1e6, 2)
            keys = [r["key"] for r in json.loads(body)["rows"]]
            n = args.decisions
            rows_busy, busy = decide_many(port, keys[:n], 0)
            results["decide_ms_p50_while_labelling"] = round(1000 * statistics.median(busy), 2)
            results["decide_ms_p95_while_labelling"] = round(1000 * _pct(busy, 0.95), 2)
            while json.loads(_request(port, "GET", "/api/progress")[1])["skills_pending"]:
                time.sleep(1)
            results["skills_labelled_s"] = round(time.perf_counter() - started, 1)
            row_times, decide_times = decide_many(port, keys[n : 2 * n], n)
        finally:
            server.close()
        results["row_ms_p50"] = round(1000 * statistics.median(row_times), 2)
        results["decide_ms_p50"] = round(1000 * statistics.median(decide_times), 2)
        results["decide_ms_p95"] = round(1000 * _pct(decide_times, 0.95), 2)
        started = time.perf_counter()
        ReviewSet(run).close()
        results["reopen_with_skills_s"] = round(time.perf_counter() - started, 3)

        line = (run / "review" / "decisions.jsonl").read_text().splitlines()[0].encode() + b"\n"
        floor = []
        fd = os.open(work / "plain.jsonl", os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        for _ in range(args.decisions):
            started = time.perf_counter()
            os.write(fd, line)
            os.fsync(fd)
            floor.append(time.perf_counter() - started)
        os.close(fd)
        results["fsync_append_ms_p50"] = round(1000 * statistics.median(floor), 2)

        started = time.perf_counter()
        save_run(work / "copy", load_from_disk(str(run / "dataset")))
        results["baseline_save_s"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        result = apply_review(run)
        save_reviewed(result, run, work / "reviewed")
        results["apply_s"] = round(time.perf_counter() - started, 3)
        results["applied"] = {"kept": len(result.dataset), "rejected": len(result.rejected)}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for key, value in results.items():
        print(f"  {key}: {value}")
    out = ROOT / "bench" / "results" / "review.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
