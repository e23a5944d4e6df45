"""What a user sees: the real ``hf-synth`` command on a pseudo-terminal shows hf-synth's own generation bar
(prompts, tok/s) and none of the libraries' bars; logged to a file, progress is log lines, not bars."""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

from .conftest import SEED_TASKS

#: hf-synth's bar for the instruction step, as tqdm draws it: "Instructions:  50%|█████     | 1/2 [...]".
BAR = re.compile(r"Instructions: +\d+%\|.*\| *\d+/\d+ \[")


def _seeds(tmp_path):
    path = tmp_path / "seeds.jsonl"
    rows = [json.loads(line) for line in SEED_TASKS.read_text(encoding="utf-8").splitlines()[:8]]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _command(tiny_model_dir, seeds, output) -> list[str]:
    return [
        sys.executable,
        "-m",
        "hf_synth.cli",
        "self-instruct",
        "--seeds",
        str(seeds),
        "--model",
        str(tiny_model_dir),
        "--backend",
        "transformers",  # the bar is the same for every backend; this one starts fastest
        "--num-instructions",
        "2",
        "--max-rounds",
        "1",
        "--requests-per-round",
        "2",
        "--max-new-tokens",
        "8",
        "--output",
        str(output),
    ]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for name in (
        "HF_DATASETS_DISABLE_PROGRESS_BARS",
        "HF_HUB_DISABLE_PROGRESS_BARS",
        "HF_SYNTH_DISABLE_PROGRESS_BARS",
    ):
        env.pop(name, None)  # what a user's shell has: nothing set (earlier in-process CLI tests set these)
    env["TERM"] = "xterm-256color"
    return env


def _run_on_terminal(command: list[str], timeout: float = 600) -> tuple[int, str]:
    """Run ``command`` with stdin, stdout and stderr on a new pseudo-terminal (120 columns); everything it
    wrote there, and its exit code."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, env=_env(), close_fds=True)
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            if time.monotonic() > deadline:
                process.kill()
                raise AssertionError(
                    "the command did not finish: " + b"".join(chunks).decode(errors="replace")
                )
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer of the terminal has closed it
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    return process.wait(timeout=60), b"".join(chunks).decode("utf-8", errors="replace")


def test_terminal_shows_hf_synth_bar_and_no_library_bars(tmp_path, tiny_model_dir):
    code, screen = _run_on_terminal(_command(tiny_model_dir, _seeds(tmp_path), tmp_path / "run"))
    assert code == 0, screen
    assert BAR.search(screen), screen  # hf-synth's own bar, drawn on the terminal
    assert "prompt/s" in screen or "s/prompt" in screen
    assert "tok_s=" in screen
    assert "Loading weights" not in screen, screen  # transformers' bar, off unless --verbose
    assert "examples/s" not in screen, screen  # datasets' per-map bars
    assert screen.count("thread(s) now") <= 1


def test_log_file_gets_progress_lines_not_bars(tmp_path, tiny_model_dir):
    log = tmp_path / "run.log"
    with open(log, "w", encoding="utf-8") as handle:
        done = subprocess.run(
            _command(tiny_model_dir, _seeds(tmp_path), tmp_path / "run"),
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=_env(),
            timeout=600,
            check=False,
        )
    text = log.read_text(encoding="utf-8")
    assert done.returncode == 0, text
    assert "\r" not in text and not BAR.search(text), text  # no bar redrawn into a file
    assert re.search(r"Instructions: \d+/\d+ prompts in [\d.]+ s, [\d.]+ tok/s", text), text
    assert "Loading weights" not in text and "examples/s" not in text, text


@pytest.mark.parametrize("verbose", [False, True])
def test_report_loads_its_embedding_model_without_a_bar_unless_verbose(tmp_path, verbose):
    """`report` loads a sentence-transformers model: transformers' "Loading weights" bar (drawn even into a
    pipe) shows only with --verbose."""
    command = [sys.executable, "-m", "hf_synth.cli", *(["--verbose"] if verbose else [])]
    command += ["report", str(SEED_TASKS), "--out", str(tmp_path / "report.json")]
    done = subprocess.run(command, capture_output=True, text=True, env=_env(), timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert ("Loading weights" in done.stderr) is verbose, done.stderr
    assert ("examples/s" in done.stderr) is verbose, done.stderr


class _Screen(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def test_the_bar_ignores_other_libraries_switches_and_has_its_own(monkeypatch, caplog):
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
    from transformers.utils import logging as transformers_logging

    from hf_synth import progress
    from hf_synth.engine.protocol import GenerationProgress

    was_disabled = are_progress_bars_disabled()
    transformers_logging.disable_progress_bar()  # what the CLI once did: huggingface_hub's bars off too
    try:
        screen = _Screen()
        bar = GenerationProgress(2, "Instances", stream=screen)
        bar.finished(5)
        bar.finished(7)
        bar.close()
        assert re.search(r"Instances: 100%\|.*\| 2/2 \[.*tok_s=", screen.getvalue())
    finally:
        if not was_disabled:
            enable_progress_bars()
            transformers_logging.enable_progress_bar()
        else:
            disable_progress_bars()
    monkeypatch.setattr(progress, "_enabled", None)
    monkeypatch.setenv("HF_SYNTH_DISABLE_PROGRESS_BARS", "1")
    screen = _Screen()
    quiet = GenerationProgress(2, "Instances", stream=screen)
    quiet.finished(1)
    quiet.close()
    assert screen.getvalue() == "" and quiet.bar is None
    monkeypatch.delenv("HF_SYNTH_DISABLE_PROGRESS_BARS")
    progress.disable_progress_bars()
    assert GenerationProgress(2, "x", stream=_Screen()).bar is None
    progress.enable_progress_bars()
    assert GenerationProgress(2, "x", stream=_Screen()).bar is not None


def test_without_a_terminal_progress_is_log_lines(caplog):
    import logging

    from hf_synth.engine.protocol import GenerationProgress

    caplog.set_level(logging.INFO, logger="hf_synth.engine.protocol")
    log = io.StringIO()  # a file: not a terminal
    bar = GenerationProgress(3, "Responding", stream=log)
    bar.log_interval = 0.0  # every finished prompt is past the interval
    for tokens in (4, 4, 4):
        bar.finished(tokens)
    bar.close()
    bar.close()
    assert log.getvalue() == "" and bar.bar is None  # nothing drawn into the file
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(",")[0] for line in lines[:3]] == [f"Responding: {n}/3 prompts" for n in (1, 2, 3)]
    assert re.fullmatch(r"Responding: 3/3 prompts in [\d.]+ s, [\d.]+ tok/s", lines[-1]) and len(lines) == 4
