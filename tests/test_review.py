"""The review step without a browser: the decisions file, the review set, the HTTP API and --apply."""

from __future__ import annotations

import http.client
import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from datasets import load_from_disk

from hf_synth.cli import main
from hf_synth.review import (
    Decision,
    DecisionConflict,
    DecisionLog,
    ReviewConfig,
    ReviewServer,
    ReviewSet,
    apply_review,
    save_reviewed,
    serve_review,
)

from .review_runs import HOSTILE, evol_instruct_run, self_instruct_run


# ------------------------------------------------------------------------------------- decisions file
def _decision(row="a", decision="accepted", **kwargs):
    return Decision(row=row, text_hash="h", decision=decision, **kwargs)


def test_decisions_are_validated():
    with pytest.raises(ValueError, match="needs a reason"):
        _decision(decision="rejected", reason="  ")
    with pytest.raises(ValueError, match="at least one changed field"):
        _decision(decision="edited")
    with pytest.raises(ValueError, match="only instruction, input, output"):
        _decision(decision="edited", edits={"messages": "x"})
    with pytest.raises(ValueError, match="decision must be one of"):
        _decision(decision="maybe")
    long = _decision(decision="rejected", reason="wrong\n  " + "x" * 500)
    assert long.reason.startswith("wrong x") and len(long.reason) == 200
    assert _decision(reason="ignored").reason is None  # only rejections carry a reason
    with pytest.raises(ValueError, match="reviewer must be text"):
        _decision(reviewer=7)
    with pytest.raises(ValueError, match="reason must be text"):
        _decision(decision="rejected", reason=["a"])


def test_every_decision_is_fsynced_before_append_returns(tmp_path, monkeypatch):
    synced = []
    real_fsync = os.fsync

    def fsync(fd):
        synced.append(fd)
        real_fsync(fd)

    log = DecisionLog(tmp_path / "d.jsonl")
    monkeypatch.setattr(os, "fsync", fsync)
    log.append(_decision("a"))
    assert synced == [log._fd]
    lines = (tmp_path / "d.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["row"] == "a"


def test_a_line_torn_by_a_crash_is_skipped_and_the_next_append_starts_clean(tmp_path):
    path = tmp_path / "d.jsonl"
    with DecisionLog(path) as log:
        first = log.append(_decision("a"))
    with open(path, "ab") as handle:  # a crash in the middle of a write
        handle.write(b'{"row": "b", "text_ha')
    with DecisionLog(path) as log:
        assert set(log.latest) == {"a"} and log.latest["a"].uid == first.uid
        log.append(_decision("c"))
    with DecisionLog(path) as log:
        assert set(log.latest) == {"a", "c"}
        assert log.skipped_lines == 1


def test_two_logs_on_one_file_see_each_other_and_refuse_stale_decisions(tmp_path):
    path = tmp_path / "d.jsonl"
    one, two = DecisionLog(path), DecisionLog(path)
    first = one.append(_decision("row"))
    with pytest.raises(DecisionConflict) as conflict:
        two.append(_decision("row", decision="rejected", reason="bad", base=None))  # made before `first`
    assert conflict.value.current.uid == first.uid
    second = two.append(_decision("row", decision="rejected", reason="bad", base=first.uid))
    one.refresh()
    assert one.latest["row"].uid == second.uid
    assert [d.decision for d in one.history("row")] == ["accepted", "rejected"]


def _append_many(path: str, name: str, n: int) -> None:
    with DecisionLog(path) as log:
        for i in range(n):
            log.append(Decision(row=f"{name}-{i}", text_hash="h", decision="accepted"))


def test_processes_appending_at_once_lose_nothing(tmp_path):
    path = str(tmp_path / "d.jsonl")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(path, name, 60)) for name in ("x", "y", "z")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    rows = [json.loads(line)["row"] for line in Path(path).read_text().splitlines()]
    assert len(rows) == 180 and len(set(rows)) == 180


# ------------------------------------------------------------------------------------------ review set
def test_a_sample_is_fixed_when_the_review_starts_and_reopening_continues_it(tmp_path):
    run = self_instruct_run(tmp_path / "run", n=20)
    first = ReviewSet(run, sample=5, seed=3)
    keys = [item.key for item in first.items]
    first.close()
    assert len(keys) == 5 and len(set(keys)) == 5
    again = ReviewSet(run)  # no flags: the same review
    assert [item.key for item in again.items] == keys
    again.close()
    same = ReviewSet(tmp_path / "run", sample=5, seed=3)  # the same settings, spelled out: continues it
    assert [item.key for item in same.items] == keys
    same.close()
    with pytest.raises(ValueError, match="started with --seed 3"):
        ReviewSet(run, seed=4)
    with pytest.raises(ValueError, match="started with --sample 5"):
        ReviewSet(run, sample=8)
    fresh = ReviewSet(run, sample=5, seed=4, restart=True)
    assert [item.key for item in fresh.items] != keys
    fresh.close()
    assert len(list(run.glob("review-before-*"))) == 1


def test_a_regenerated_run_is_not_silently_reviewed_with_old_decisions(tmp_path):
    run = self_instruct_run(tmp_path / "run", n=4)
    ReviewSet(run).close()
    self_instruct_run(run, n=2)  # the run was made again, with fewer rows
    with pytest.raises(ValueError, match="no longer in the run.*--restart"):
        ReviewSet(run)


def test_a_folder_that_is_not_a_run_is_refused_with_the_fix(tmp_path):
    with pytest.raises(ValueError, match="not a folder"):
        ReviewSet(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no dataset/ folder or data.jsonl"):
        ReviewSet(tmp_path / "empty")


def test_evol_rows_show_parent_and_root_text(tmp_path):
    review = ReviewSet(evol_instruct_run(tmp_path / "evol"), include_rejected=True, skills=False)
    lineage = review.lineage(review.by_key["r-r2"])
    assert [(a["role"], a["instruction"]) for a in lineage] == [
        ("parent", "Name a tropical fruit and say where it grows."),
        ("root", "Name a fruit."),
    ]
    assert review.lineage(review.by_key["q-r1"]) == [
        {"id": "q", "instruction": "What is rain?", "role": "parent and root"}
    ]
    assert review.by_key["rejected:z-r1"].reasons == ["no_new_information"]
    review.close()


def test_rows_without_a_skill_get_the_classifiers_guess_once(tmp_path):
    from datasets import Dataset

    from hf_synth.io import save_run

    rows = [
        {
            "instruction": "Write a Python function that reverses a list.",
            "input": "",
            "output": "def r(x): ...",
        },
        {"instruction": "Write a poem about the sea.", "input": "", "output": "Waves..."},
    ]
    save_run(tmp_path / "run", Dataset.from_list(rows))
    review = ReviewSet(tmp_path / "run")
    assert [i.skill for i in review.items] == ["coding", "creative_writing"]
    assert [i.key for i in review.items] == ["#0", "#1"]  # no id column: positions
    review.close()
    cached = json.loads((tmp_path / "run" / "review" / "skills.json").read_text())
    assert {k: v[1] for k, v in cached.items()} == {"#0": "coding", "#1": "creative_writing"}


# ------------------------------------------------------------------------------------------- HTTP API
@pytest.fixture
def served(tmp_path):
    run = self_instruct_run(tmp_path / "run")
    server = serve_review(run, ReviewConfig(port=0, include_rejected=True, reviewer="ann"), block=False)
    yield server, run
    server.close()


def _request(server, method, path, body=None, headers=None):
    host, port = server.server_address[:2]
    connection = http.client.HTTPConnection(host, port, timeout=10)
    payload = json.dumps(body).encode() if body is not None else None
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    connection.request(method, path, body=payload, headers=all_headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, dict(response.getheaders()), data


def test_api_decides_refuses_stale_views_and_reports_progress(served):
    server, run = served
    status, headers, data = _request(server, "GET", "/api/row?key=si-001")
    row = json.loads(data)
    assert status == 200 and row["fields"]["output"].endswith(HOSTILE)
    assert (
        "script-src 'self'" in headers["Content-Security-Policy"]
        and "unsafe-inline" not in headers["Content-Security-Policy"]
    )
    body = {"key": "si-001", "text_hash": row["text_hash"], "decision": "accepted", "base": None}
    status, _, data = _request(server, "POST", "/api/decide", body)
    assert status == 200 and json.loads(data)["progress"]["reviewed"] == 1
    status, _, data = _request(server, "POST", "/api/decide", {**body, "decision": "rejected", "reason": "x"})
    assert status == 409 and json.loads(data)["current"]["decision"] == "accepted"  # a second, stale tab
    status, _, data = _request(server, "POST", "/api/decide", {**body, "decision": "edited", "edits": {}})
    assert status == 400
    dropped = json.loads(_request(server, "GET", "/api/row?key=rejected:si-rej-1")[2])
    assert dropped["reasons"] == ["refusal"] and dropped["kind"] == "rejected"
    edit = {
        "key": dropped["key"],
        "text_hash": dropped["text_hash"],
        "decision": "edited",
        "edits": {"output": "y"},
    }
    status, _, data = _request(server, "POST", "/api/decide", edit)
    assert status == 400 and b"not edited" in data  # filter-dropped rows are judged, not corrected
    lines = (run / "review" / "decisions.jsonl").read_text().splitlines()
    assert len(lines) == 1


def test_api_accepts_only_local_same_origin_json(served):
    server, _ = served
    status, _, _ = _request(server, "GET", "/api/state", headers={"Host": "evil.example:80"})
    assert status == 403  # DNS rebinding: a page of another site resolving to 127.0.0.1
    body = {"key": "si-000", "text_hash": "x", "decision": "accepted"}
    origin = {"Origin": "http://evil.example"}
    assert _request(server, "POST", "/api/decide", body, headers=origin)[0] == 403
    assert _request(server, "POST", "/api/decide", body, headers={"Content-Type": "text/plain"})[0] == 415
    assert _request(server, "POST", "/api/decide", body, headers={"Sec-Fetch-Site": "cross-site"})[0] == 403
    assert _request(server, "GET", "/../../etc/passwd")[0] == 404
    assert _request(server, "PUT", "/api/decide", body)[0] == 405
    with pytest.raises(ValueError, match="--allow-remote"):
        ReviewServer(server.app, "0.0.0.0", 0)


# ------------------------------------------------------------------------------------------------ apply
def _decide(review: ReviewSet, key: str, decision: str, **kwargs) -> None:
    item = review.all_by_key[key]
    base = review.log.latest.get(key)
    review.log.append(
        Decision(
            row=key, text_hash=item.text_hash, decision=decision, base=base.uid if base else None, **kwargs
        )
    )


def test_apply_writes_the_reviewed_dataset_card_and_figures(tmp_path, capsys):
    run = self_instruct_run(tmp_path / "run")
    review = ReviewSet(run, include_rejected=True)
    _decide(review, "si-000", "accepted", reviewer="ann")
    _decide(review, "si-001", "rejected", reason="unsafe_or_toxic", reviewer="ann")
    _decide(review, "si-002", "edited", edits={"output": "おはよう！"}, reviewer="bo")
    _decide(review, "si-003", "rejected", reason="made-up facts")
    _decide(review, "rejected:si-rej-1", "accepted")  # the reviewer thinks the refusal filter was wrong
    _decide(review, "rejected:si-rej-2", "rejected", reason="agrees_with_filter")
    review.close()

    result = apply_review(run)
    rows = {r["id"]: r for r in result.dataset}
    assert set(rows) == {"si-000", "si-002", "si-004", "si-005"}
    edited = rows["si-002"]
    assert edited["output"] == "おはよう！" and edited["review_original"]["output"] == "おはようございます"
    assert edited["messages"][1]["content"] == "おはよう！"
    assert edited["review"]["decision"] == "edited" and edited["review"]["edited"] == ["output"]
    assert rows["si-000"]["review"]["reviewer"] == "ann" and rows["si-000"]["review_original"] is None
    assert rows["si-004"]["review"]["decision"] is None
    human = {r["id"]: r for r in result.rejected if r.get("review", {}).get("decision") == "rejected"}
    assert human["si-001"]["filter_reasons"] == ["human:unsafe_or_toxic"]
    assert human["si-003"]["filter_reasons"] == ["human:made-up facts"]
    assert human["si-001"]["stage"] == "human_review"
    assert len(result.rejected) == 5  # the run's 3 + the reviewer's 2

    figures = result.figures
    assert (figures["reviewed"], figures["accepted"], figures["edited"], figures["rejected"]) == (4, 1, 1, 2)
    assert figures["acceptance_rate"] == 0.5
    assert figures["by_skill"]["creative_writing"] == {
        "reviewed": 1,
        "accepted": 0,
        "edited": 0,
        "rejected": 1,
        "acceptance_rate": 0.0,
    }
    assert figures["filtered_rows"]["judged_good"] == 1 and figures["filtered_rows"]["judged_bad"] == 1
    assert figures["filtered_rows"]["by_reason"]["refusal"] == {"reviewed": 2, "judged_bad": 1}
    assert figures["reviewers"] == ["ann", "bo"]

    out = tmp_path / "reviewed"
    save_reviewed(result, run, out)
    assert load_from_disk(str(out / "dataset")).num_rows == 4
    reviewed_summary = json.loads((out / "summary.json").read_text())
    assert reviewed_summary["review"]["reviewed"] == 4
    assert reviewed_summary["diversity"]["rows"] == 4  # of the rows the review kept, not the run's 6
    card = (out / "README.md").read_text()
    assert "## Diversity" in card and "| `rows` | 4 |" in card
    assert "A person checked **4** of the 6 rows" in card
    assert "| creative_writing | 1 | 0 | 0 | 1 | 0.0% |" in card
    assert "`human:unsafe_or_toxic`" in card
    assert "human-reviewed" in card

    assert main(["report", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "human review: 4 of 6 rows reviewed" in printed
    assert "acceptance 50.0%" in printed


def test_apply_with_every_row_rejected_saves_an_empty_dataset_with_its_columns(tmp_path):
    run = self_instruct_run(tmp_path / "run")
    review = ReviewSet(run, skills=False)
    for item in review.items:
        _decide(review, item.key, "rejected", reason="trivial_or_duplicate")
    review.close()
    save_reviewed(apply_review(run, skills=False), run, tmp_path / "out")
    saved = load_from_disk(str(tmp_path / "out" / "dataset"))
    assert len(saved) == 0 and {"instruction", "output", "review", "review_original"} <= set(
        saved.column_names
    )
    assert len((tmp_path / "out" / "rejected.jsonl").read_text(encoding="utf-8").splitlines()) >= len(
        review.items
    )


def test_apply_skips_decisions_on_changed_text(tmp_path):
    run = self_instruct_run(tmp_path / "run", n=3)
    review = ReviewSet(run)
    _decide(review, "si-000", "rejected", reason="wrong_output")
    review.close()
    rows = [json.loads(line) for line in (run / "data.jsonl").read_text().splitlines()]
    rows[0]["output"] = "regenerated"
    from datasets import Dataset

    from hf_synth.io import save_run

    save_run(run, Dataset.from_list(rows))
    result = apply_review(run)
    assert result.figures["stale_decisions"] == 1 and result.figures["reviewed"] == 0
    assert len(result.dataset) == 3


def test_cli_apply_needs_decisions_and_a_new_output(tmp_path, capsys):
    run = self_instruct_run(tmp_path / "run", n=3)
    assert main(["review", str(run), "--apply", "--output", str(tmp_path / "out"), "--no-skills"]) == 2
    assert "holds no decisions yet" in capsys.readouterr().err
    assert main(["review", str(run), "--apply", "--output", str(run)]) == 2
    assert "not the run being reviewed" in capsys.readouterr().err
    assert main(["review", str(run), "--apply"]) == 2
    assert "add --output OUT" in capsys.readouterr().err
    review = ReviewSet(run)
    _decide(review, "si-001", "accepted")
    review.close()
    assert main(["review", str(run), "--apply", "--output", str(tmp_path / "out")]) == 0
    assert "human review: 1 of 3 rows reviewed: accepted 1" in capsys.readouterr().out


def test_a_killed_review_server_loses_no_decision(tmp_path):
    """The CLI server is killed with SIGKILL right after answering; a new one continues the review."""
    run = self_instruct_run(tmp_path / "run")

    def start():
        process = subprocess.Popen(
            [sys.executable, "-m", "hf_synth.cli", "review", str(run), "--port", "0", "--reviewer", "kim"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
        )
        deadline = time.monotonic() + 120
        for line in process.stdout:
            if line.startswith("Review page: "):
                return process, line.split()[2]
            assert time.monotonic() < deadline
        raise AssertionError(f"no URL printed (exit {process.wait()})")

    process, url = start()
    port = int(url.rstrip("/").rsplit(":", 1)[1])

    class Server:
        server_address = ("127.0.0.1", port)

    for key in ("si-000", "si-001"):
        row = json.loads(_request(Server, "GET", f"/api/row?key={key}")[2])
        body = {"key": key, "text_hash": row["text_hash"], "decision": "accepted", "base": None}
        assert _request(Server, "POST", "/api/decide", body)[0] == 200
    process.kill()
    process.wait()
    process, url = start()
    try:
        Server.server_address = ("127.0.0.1", int(url.rstrip("/").rsplit(":", 1)[1]))
        state = json.loads(_request(Server, "GET", "/api/state")[2])
        assert state["progress"]["reviewed"] == 2
        assert [r["status"] for r in state["rows"][:3]] == ["accepted", "accepted", "unreviewed"]
    finally:
        process.kill()
        process.wait()


def test_the_review_section_of_a_card_renders_tricky_names_literally(tmp_path):
    from datasets import Dataset

    from hf_synth.cards import build_card

    figures = {
        "reviewed": 3,
        "run_rows": 10,
        "rows_in_review": 5,
        "sample": 5,
        "seed": 1,
        "accepted": 1,
        "edited": 1,
        "rejected": 1,
        "acceptance_rate": 0.6667,
        "by_skill": {
            "coding": {"reviewed": 3, "accepted": 1, "edited": 1, "rejected": 1, "acceptance_rate": 0.6667}
        },
        "by_operation": {},
        "reject_reasons": {'{{ 7*7 }} {% raw %} "quoted" 日本語': 1},
        "reviewers": ["Zoë {{ name }}"],
        "stale_decisions": 0,
    }
    data = Dataset.from_list([{"instruction": "x", "input": "", "output": "y"}])
    card = build_card(
        data, method="human review", tags=["human-reviewed"], steps=["s"], review=figures
    ).content
    assert (
        "A person checked **3** of the 10 rows (a random sample of 5, seed 1), reviewers: Zoë {{ name }}"
        in card
    )
    assert '`{{ 7*7 }} {% raw %} "quoted" 日本語` (1)' in card
    assert "| coding | 3 | 1 | 1 | 1 | 66.7% |" in card
    assert "evolution operation" not in card and "filters had dropped" not in card
    without = build_card(data, method="filter", tags=[], steps=["s"]).content
    assert "Human review" not in without


def test_cli_review_reads_its_yaml_section_and_flags_override_it(tmp_path, capsys, monkeypatch):
    import hf_synth.review as review_module

    seen = {}

    class Stopped:
        url, thread = "http://127.0.0.1:1/", None

        def close(self):
            seen["closed"] = True

    def fake_serve(run, config, restart, block):
        seen.update(config=config, block=block)
        return Stopped()

    monkeypatch.setattr(review_module, "serve_review", fake_serve)
    config = tmp_path / "review.yaml"
    config.write_text("review:\n  sample: 4\n  seed: 9\n  reviewer: ann\n")
    run = self_instruct_run(tmp_path / "run")
    assert main(["review", str(run), "--config", str(config), "--seed", "2"]) == 0
    assert (seen["config"].sample, seen["config"].seed, seen["config"].reviewer) == (4, 2, "ann")
    assert seen["closed"] and "Review page: http://127.0.0.1:1/" in capsys.readouterr().out
    config.write_text("reviews:\n  sample: 4\n")
    assert main(["review", str(run), "--config", str(config)]) == 2
    assert "Unknown section(s) reviews" in capsys.readouterr().err


def test_reviewing_a_reviewed_dataset_keeps_earlier_decisions_and_the_first_text(tmp_path):
    run = self_instruct_run(tmp_path / "run", n=4)
    review = ReviewSet(run, skills=False)
    _decide(review, "si-000", "edited", edits={"output": "first fix"}, reviewer="ann")
    _decide(review, "si-001", "accepted", reviewer="ann")
    review.close()
    save_reviewed(apply_review(run, skills=False), run, tmp_path / "once")
    again = ReviewSet(tmp_path / "once", skills=False)
    assert len(again.items) == 4
    _decide(again, "si-000", "edited", edits={"output": "second fix"}, reviewer="bo")
    _decide(again, "si-002", "rejected", reason="wrong_output", reviewer="bo")
    again.close()
    result = apply_review(tmp_path / "once", skills=False)
    rows = {r["id"]: r for r in result.dataset}
    assert rows["si-000"]["output"] == "second fix"
    assert rows["si-000"]["review_original"]["output"] == "The answer to task 0."  # the model's text
    assert rows["si-000"]["review"]["reviewer"] == "bo"
    assert rows["si-001"]["review"] == {  # decided in the first review, untouched by the second
        "decision": "accepted",
        "reason": None,
        "reviewer": "ann",
        "time": rows["si-001"]["review"]["time"],
        "edited": [],
    }
    assert "si-002" not in rows
    save_reviewed(result, tmp_path / "once", tmp_path / "twice")
    from datasets import load_dataset

    rejected = load_dataset("json", data_files=str(tmp_path / "twice" / "rejected.jsonl"), split="train")
    assert "human:wrong_output" in [r for row in rejected["filter_reasons"] for r in row]


def test_a_reviewed_run_pushes_and_loads_with_its_rejected_config(tmp_path):
    from datasets import load_dataset

    run = self_instruct_run(tmp_path / "run", n=4)
    review = ReviewSet(run, skills=False)
    _decide(review, "si-001", "rejected", reason="unsafe_or_toxic")
    _decide(review, "si-002", "edited", edits={"instruction": "Say good morning in Japanese."})
    review.close()
    save_reviewed(apply_review(run, skills=False), run, tmp_path / "out")
    # the folder name test_hub's pushes use too: each push's data files carry their own digest, so
    # datasets' cache (keyed by folder name and the card's configs) cannot hand back another test's rows
    repo = tmp_path / "repo"
    assert main(["push", str(tmp_path / "out"), "--local-dir", str(repo)]) == 0
    data = load_dataset(str(repo), split="train")
    assert len(data) == 3 and "review" in data.column_names
    rejected = load_dataset(str(repo), "rejected", split="train")
    assert len(rejected) == 4
    assert ["human:unsafe_or_toxic"] in rejected["filter_reasons"]


def _unlabelled_run(folder: Path, n: int) -> Path:
    from datasets import Dataset

    from hf_synth.io import save_run

    rows = [{"id": f"u{i}", "instruction": f"Task {i}", "input": "", "output": f"Out {i}"} for i in range(n)]
    save_run(folder, Dataset.from_list(rows))
    return folder


class _FakeClassifier:
    """Labels 'Task i' as skill-(i % 2); raises after ``fail_after`` calls (a killed server)."""

    def __init__(self, fail_after: int | None = None):
        self.calls, self.fail_after = 0, fail_after

    def predict(self, texts):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("killed")
        self.calls += 1
        return [f"skill-{int(t.split()[1]) % 2}" for t in texts]


def test_skill_labels_are_kept_chunk_by_chunk_so_a_killed_labelling_resumes(tmp_path, monkeypatch):
    import hf_synth.curation.skill_classifier as skill_classifier

    run = _unlabelled_run(tmp_path / "run", 5)
    dying = _FakeClassifier(fail_after=2)
    monkeypatch.setattr(skill_classifier, "default_skill_classifier", lambda: dying)
    review = ReviewSet(run, skills=False)
    with pytest.raises(KeyboardInterrupt):
        review._add_skills(review.items, chunk=2)
    review.close()
    cached = json.loads((run / "review" / "skills.json").read_text())
    assert sorted(cached) == ["u0", "u1", "u2", "u3"]
    fresh = _FakeClassifier()
    monkeypatch.setattr(skill_classifier, "default_skill_classifier", lambda: fresh)
    review = ReviewSet(run)
    assert fresh.calls == 1  # only u4 was left
    assert [i.skill for i in review.items] == ["skill-0", "skill-1", "skill-0", "skill-1", "skill-0"]
    review.close()


def test_the_page_is_served_before_skills_are_labelled(tmp_path, monkeypatch):
    import threading

    import hf_synth.curation.skill_classifier as skill_classifier

    release = threading.Event()

    class Slow(_FakeClassifier):
        def predict(self, texts):
            assert release.wait(30)
            return super().predict(texts)

    monkeypatch.setattr(skill_classifier, "default_skill_classifier", lambda: Slow())
    server = serve_review(_unlabelled_run(tmp_path / "run", 3), ReviewConfig(port=0), block=False)
    try:
        state = json.loads(_request(server, "GET", "/api/state")[2])
        assert state["progress"]["skills_pending"] == 3 and {r["skill"] for r in state["rows"]} == {None}
        release.set()
        deadline = time.monotonic() + 30
        while json.loads(_request(server, "GET", "/api/progress")[2])["skills_pending"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        state = json.loads(_request(server, "GET", "/api/state")[2])
        assert [r["skill"] for r in state["rows"]] == ["skill-0", "skill-1", "skill-0"]
    finally:
        release.set()
        server.close()
