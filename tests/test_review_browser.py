"""The review page in a real browser: headless Chromium driven by Playwright (``make test`` installs both;
these tests skip, saying why, only where no browser can be installed, and fail instead with ``CI=true``)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from hf_synth.review import ReviewConfig, apply_review, serve_review

from .conftest import unavailable
from .review_runs import HOSTILE, evol_instruct_run, self_instruct_run

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _chromium() -> str | None:
    for candidate in (os.environ.get("HF_SYNTH_CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    return None


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright import sync_api
    except ImportError:
        unavailable("playwright is not installed (make test installs it with the dev extra)")
    executable = _chromium()
    if executable is None:
        unavailable("no Chromium on this machine (make test installs Debian's chromium package when it can)")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def expect():
    from playwright.sync_api import expect

    return expect


def _serve(run: Path, **config):
    return serve_review(run, ReviewConfig(port=0, **config), block=False)


def _stop(server) -> None:
    server.close()


def _open(context, url: str, errors: list[str]):
    page = context.new_page()
    page.on("pageerror", lambda err: errors.append(str(err)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(url)
    page.wait_for_selector("body[data-ready='1']")
    return page


def _decisions(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "review" / "decisions.jsonl").read_text().splitlines()]


def test_accept_reject_edit_reload_continue_and_apply(browser, expect, tmp_path):
    run = self_instruct_run(tmp_path / "run")
    server = _serve(run, reviewer="ann")
    context = browser.new_context(viewport={"width": 1200, "height": 1100})
    errors: list[str] = []
    try:
        page = _open(context, server.url, errors)
        progress = page.locator("[data-testid=progress]")
        expect(progress).to_contain_text("0 / 6 reviewed")
        expect(page.locator("#position")).to_contain_text("id si-000")
        page.keyboard.press("a")  # accept si-000
        expect(progress).to_contain_text("1 / 6 reviewed")

        # si-001 holds markup and script: shown as text, never run
        expect(page.locator("#position")).to_contain_text("id si-001")
        expect(page.locator("[data-field=output]")).to_have_text(f"It is markup. {HOSTILE}")
        assert page.evaluate("() => window.__pwned") is None
        assert page.locator("#fields img, #fields script").count() == 0
        page.keyboard.press("r")
        page.keyboard.press("4")  # unsafe_or_toxic
        page.keyboard.press("Enter")
        expect(progress).to_contain_text("2 / 6 reviewed")

        # si-002: edit the output (non-English), saved with Ctrl+Enter
        expect(page.locator("#position")).to_contain_text("id si-002")
        page.keyboard.press("e")
        page.locator("textarea[data-field=output]").fill("おはよう！ {{ edited }} <b>bold</b>")
        page.keyboard.press("Control+Enter")
        expect(progress).to_contain_text("3 / 6 reviewed")

        # si-003: reject with the reviewer's own words, with the mouse
        page.click("#reject")
        page.fill("#reject-other", "made-up facts")
        page.click("#reject-confirm")
        expect(progress).to_contain_text("4 / 6 reviewed · accepted 1, edited 1, rejected 2 · acceptance 50%")
        expect(page.locator("#position")).to_contain_text("id si-004")

        # reload: the page continues at the row it showed, with the same progress
        page.reload()
        page.wait_for_selector("body[data-ready='1']")
        expect(progress).to_contain_text("4 / 6 reviewed")
        expect(page.locator("#position")).to_contain_text("id si-004")

        # a closed tab and a new one: it opens at the first unreviewed row
        page.close()
        page = _open(context, server.url, errors)
        expect(page.locator("#position")).to_contain_text("id si-004")
        page.keyboard.press("n")
        expect(page.locator("#position")).to_contain_text("id si-005")
        page.keyboard.press("p")
        expect(page.locator("#position")).to_contain_text("id si-004")
        page.screenshot(path=str(tmp_path / "review-page.png"), full_page=True)
    finally:
        context.close()
        _stop(server)
    assert (tmp_path / "review-page.png").stat().st_size > 10_000
    assert errors == []

    decisions = _decisions(run)
    assert [(d["row"], d["decision"], d["reason"]) for d in decisions] == [
        ("si-000", "accepted", None),
        ("si-001", "rejected", "unsafe_or_toxic"),
        ("si-002", "edited", None),
        ("si-003", "rejected", "made-up facts"),
    ]
    assert decisions[2]["edits"] == {"output": "おはよう！ {{ edited }} <b>bold</b>"}
    assert {d["reviewer"] for d in decisions} == {"ann"}

    result = apply_review(run)
    rows = {r["id"]: r for r in result.dataset}
    assert sorted(rows) == ["si-000", "si-002", "si-004", "si-005"]
    assert rows["si-002"]["output"] == "おはよう！ {{ edited }} <b>bold</b>"
    assert rows["si-002"]["review_original"]["output"] == "おはようございます"
    reasons = {r["id"]: r["filter_reasons"] for r in result.rejected if r["id"] in ("si-001", "si-003")}
    assert reasons == {"si-001": ["human:unsafe_or_toxic"], "si-003": ["human:made-up facts"]}


def test_two_tabs_do_not_lose_each_others_decisions(browser, expect, tmp_path):
    run = self_instruct_run(tmp_path / "run", n=3)
    server = _serve(run)
    context = browser.new_context()
    errors: list[str] = []
    try:
        first = _open(context, server.url, errors)
        second = _open(context, server.url, errors)  # both show si-000
        first.locator("#reviewer").fill("ann")
        second.locator("#reviewer").fill("bo")
        first.click("#accept")
        expect(first.locator("[data-testid=progress]")).to_contain_text("1 / 3 reviewed")
        second.click("#reject")
        second.click("#reject-confirm")  # wrong_output, on a view made before the first tab's decision
        expect(second.locator("#message")).to_contain_text("another tab decided this row")
        expect(second.locator("#status")).to_have_text("accepted")
        expect(second.locator("#decision")).to_contain_text("by ann")
        assert [d["decision"] for d in _decisions(run)] == ["accepted"]
        second.click("#reject")  # now deliberately, on the current view
        second.click("#reject-confirm")
        expect(second.locator("[data-testid=progress]")).to_contain_text("rejected 1")
        decisions = _decisions(run)
        assert [(d["decision"], d["reviewer"]) for d in decisions] == [
            ("accepted", "ann"),
            ("rejected", "bo"),
        ]
        assert decisions[1]["base"] == decisions[0]["uid"]
        first.keyboard.press("u")  # the first tab moves on; coming back, it sees the other tab's work
        first.evaluate("() => document.dispatchEvent(new Event('visibilitychange'))")
        expect(first.locator("[data-testid=progress]")).to_contain_text("1 / 3 reviewed · accepted 0")
    finally:
        context.close()
        _stop(server)
    assert errors == [] or all("409" in e for e in errors)


def test_filters_lineage_and_filter_dropped_rows(browser, expect, tmp_path):
    run = evol_instruct_run(tmp_path / "evol")
    server = _serve(run, include_rejected=True)
    context = browser.new_context()
    errors: list[str] = []
    try:
        page = _open(context, server.url, errors)
        expect(page.locator("#view-count")).to_have_text("4 rows in this view")
        page.select_option("#f-op", "constraints")
        expect(page.locator("#view-count")).to_have_text("1 rows in this view")
        expect(page.locator("#position")).to_contain_text("id r-r2")
        lineage = page.locator("#lineage li")
        expect(lineage).to_have_count(2)
        expect(lineage.nth(0)).to_contain_text("parent (deepening, round 1): Name a tropical fruit")
        expect(lineage.nth(1)).to_contain_text("root: Name a fruit.")
        page.select_option("#f-op", "")
        page.select_option("#f-kind", "rejected")
        expect(page.locator("#view-count")).to_have_text("1 rows in this view")
        expect(page.locator("#reasons")).to_have_text("Dropped because: no_new_information")
        expect(page.locator("#edit")).to_be_disabled()
        page.keyboard.press("r")  # a filter-dropped row: "reject" agrees with the filter at once
        expect(page.locator("[data-testid=progress]")).to_contain_text(
            "1 / 4 reviewed · accepted 0, edited 0, rejected 0 · acceptance – · 1 filter-dropped rows judged"
        )
        page.select_option("#f-kind", "")
        page.select_option("#f-reason", "no_new_information")
        expect(page.locator("#status")).to_have_text("rejected")
        page.select_option("#f-reason", "")
        page.select_option("#f-status", "unreviewed")
        expect(page.locator("#view-count")).to_have_text("3 rows in this view")
    finally:
        context.close()
        _stop(server)
    assert errors == []
    decisions = _decisions(run)
    assert [(d["row"], d["reason"]) for d in decisions] == [("rejected:z-r1", "agrees_with_filter")]
    assert re.fullmatch(r"[0-9a-f]{32}", decisions[0]["uid"])


def test_the_skill_filter_fills_in_when_background_labelling_ends(browser, expect, tmp_path, monkeypatch):
    import threading

    from datasets import Dataset

    import hf_synth.curation.skill_classifier as skill_classifier
    from hf_synth.io import save_run

    release = threading.Event()

    class Slow:
        def predict(self, texts):
            assert release.wait(60)
            return ["coding" if "code" in t else "open_qa" for t in texts]

    monkeypatch.setattr(skill_classifier, "default_skill_classifier", lambda: Slow())
    rows = [
        {"id": "a", "instruction": "Write code that sorts a list.", "input": "", "output": "sorted(x)"},
        {"id": "b", "instruction": "Why is the sky blue?", "input": "", "output": "Scattering."},
    ]
    save_run(tmp_path / "run", Dataset.from_list(rows))
    server = _serve(tmp_path / "run")
    context = browser.new_context()
    errors: list[str] = []
    try:
        page = _open(context, server.url, errors)
        expect(page.locator("[data-testid=progress]")).to_contain_text("labelling skills: 2 rows left")
        expect(page.locator("#f-skill")).to_be_hidden()
        page.keyboard.press("a")  # the review goes on meanwhile
        expect(page.locator("[data-testid=progress]")).to_contain_text("1 / 2 reviewed")
        release.set()
        expect(page.locator("#f-skill")).to_be_visible(timeout=15_000)
        expect(page.locator("[data-testid=progress]")).not_to_contain_text("labelling")
        page.select_option("#f-skill", "coding")
        expect(page.locator("#view-count")).to_have_text("1 rows in this view")
        expect(page.locator("#status")).to_have_text("accepted")
    finally:
        release.set()
        context.close()
        server.close()
    assert errors == []
