"""hf-synth's own cost per row, with a teacher that answers at once (bench/instant_teacher.py).

Every second measured here is hf-synth's: the teacher's replies are computed in microseconds (their time is
measured and subtracted). Parts, each printed as a Markdown table and written to ``--out`` (JSON):

* ``self-instruct``: SelfInstruct to N kept instructions (1k/5k/20k/50k) from the seed tasks: wall, own ms
  per kept row, rounds, prompts per engine call (median/max), peak RSS, and each stage's ms per kept row and
  share of the run (instruction generation, parsing, novelty, task type, instances, filters, finalising,
  checkpointing, saving).
* ``server``: the same through the ``server`` backend against a local instant chat server (HTTP, loopback;
  in a process of its own, ``--server-latency-ms`` per answer), one call at a time and overlapped
  (``--server-modes``).
* ``evol``: Evol-Instruct over 10,000 roots x 3 rounds with the judge and answers: own ms per evolved row.
* ``filters``: the ``filter`` chain (ROUGE-L novelty, MinHash, length, toxicity) over 50,000 rows.
* ``resume``: kill -9 half way through a 20,000-row run (instant teacher, checkpoints), restart: the same
  rows as an uninterrupted run, no duplicates (with and without concurrent calls).
* ``wide``: a simulated wide engine (N slots, a fixed time per decode step whatever the number of live rows,
  prefill by tokens; run in real time by a scheduler thread, so hf-synth's own time overlaps it only where
  the pipeline really overlaps) under a whole Self-Instruct + Evol-Instruct run: slot utilisation =
  decoded row-steps / (N x decode steps the run's wall time holds), with the engine taking concurrent
  calls (a served pool: rounds and chunks overlap) and one call at a time (in-process engines).

    make bench-pipeline-cost            # everything
    .venv/bin/python bench/bench_pipeline_cost.py --parts self-instruct --sizes 1000,5000
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import resource
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.instant_teacher import InstantTeacher, instruction, prompt_text, reply_for  # noqa: E402

SEEDS = HERE.parent.parent / "shared" / "data" / "self_instruct_seed_tasks.jsonl"
OWN_SEEDS = HERE.parent / "tests" / "data" / "seed_tasks.jsonl"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_seeds():
    from datasets import Dataset

    path = SEEDS if SEEDS.exists() else OWN_SEEDS
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return Dataset.from_list(rows), path.name


class StageClock:
    """Wall time per stage, by wrapping the functions the pipeline module calls (bench-only)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self._undo: list = []

    def wrap(self, owner, name: str, stage: str) -> None:
        original = getattr(owner, name)

        def timed(*args, **kwargs):
            began = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - began

        setattr(owner, name, timed)
        self._undo.append((owner, name, original))

    def restore(self) -> None:
        for owner, name, original in reversed(self._undo):
            setattr(owner, name, original)
        self._undo.clear()


SI_STAGES = [
    ("generate_instructions", "instruction generation"),
    ("explode_instructions", "parsing"),
    ("score_instructions", "novelty"),
    ("classify_tasks", "task type"),
    ("generate_instances", "instances"),
    ("score_instances", "filters"),
    ("split_filtered", "filters"),
    ("_as_rejected", "finalising"),
    ("_failed_requests", "finalising"),
]


@contextmanager
def si_stages(clock: StageClock):
    from hf_synth import checkpoint
    from hf_synth.self_instruct import pipeline

    for name, stage in SI_STAGES:
        clock.wrap(pipeline, name, stage)
    clock.wrap(pipeline.SelfInstruct, "_finalize", "finalising")
    clock.wrap(checkpoint.Checkpointer, "save", "checkpointing")
    clock.wrap(checkpoint.Checkpointer, "save_json", "checkpointing")
    try:
        yield clock
    finally:
        clock.restore()


def run_self_instruct(engine, seeds, n: int, teacher_seconds, checkpoint_dir=None, by_desc=None) -> dict:
    from hf_synth import SelfInstruct, SelfInstructConfig
    from hf_synth.io import save_run

    clock = StageClock()
    config = SelfInstructConfig(num_instructions=n)
    began = time.perf_counter()
    with si_stages(clock):
        result = SelfInstruct(engine, config, checkpoint_dir=checkpoint_dir).run(seeds)
    run_wall = time.perf_counter() - began
    with tempfile.TemporaryDirectory() as out:
        saved = time.perf_counter()
        save_run(out, result.dataset, result.rejected, summary=result.summary.to_dict())
        clock.seconds["saving"] += time.perf_counter() - saved
    wall = run_wall + clock.seconds["saving"]
    engine_s = teacher_seconds()
    by_desc = by_desc or {}
    own = wall - engine_s
    kept = len(result.dataset)
    # The teacher's own time is not hf-synth's: taken off the stage that waited for it.
    for desc, stage in (("Instructions", "instruction generation"), ("Task types", "task type")):
        clock.seconds[stage] -= by_desc.get(desc, 0.0)
    clock.seconds["instances"] -= by_desc.get("Instances", 0.0)
    stages = {
        stage: {"ms_per_row": round(1000 * s / kept, 3), "share": round(s / wall, 3)}
        for stage, s in sorted(clock.seconds.items(), key=lambda kv: -kv[1])
    }
    other = own - sum(clock.seconds.values())
    stages["other"] = {"ms_per_row": round(1000 * other / kept, 3), "share": round(other / wall, 3)}
    return {
        "target": n,
        "kept": kept,
        "rounds": result.summary.rounds,
        "stopped_early": result.summary.stopped_early,
        "wall_s": round(wall, 1),
        "engine_s": round(engine_s, 1),
        "own_ms_per_row": round(1000 * own / kept, 3),
        "stages": stages,
        "summary_requests": result.summary.requests,
        "peak_rss_mb": round(peak_rss_mb()),
    }


def call_stats(calls) -> dict:
    sizes = [n for _, n in calls]
    return {"engine_calls": len(sizes), "prompts_median": statistics.median(sizes), "prompts_max": max(sizes)}


def part_self_instruct(sizes, seeds, width) -> list[dict]:
    rows = []
    for n in sizes:
        teacher = InstantTeacher(max_concurrency=width)
        row = run_self_instruct(
            teacher, seeds, n, lambda t=teacher: t.seconds, by_desc=teacher.seconds_by_desc
        )
        row.update(call_stats(teacher.calls))
        rows.append(row)
        logging.getLogger("bench").warning("self-instruct %s", json.dumps(row))
    return rows


@contextmanager
def chat_server(reply, *, separate: bool, latency_ms: float):
    """The instant chat server: in this process (threads beside the client) or in a process of its own."""
    if not separate:
        sys.path.insert(0, str(HERE.parent / "tests"))
        from chat_server import FakeChatServer

        with FakeChatServer(reply, model="instant") as server:
            server.delay = latency_ms / 1000
            yield server.url
        return
    import subprocess

    command = [sys.executable, str(HERE / "instant_chat_server.py"), "--latency-ms", str(latency_ms)]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = int(process.stdout.readline().split()[1])
        yield f"http://127.0.0.1:{port}"
    finally:
        process.stdin.close()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def part_server(sizes, seeds, width, modes, separate: bool, latency_ms: float) -> list[dict]:
    """Self-Instruct through the ``server`` backend, each size in each mode: ``one-call`` (the engine takes
    one call at a time: ``--no-concurrent-calls``) and ``concurrent`` (rounds overlapped, chunks streamed,
    two calls per step in flight; the default)."""
    from hf_synth.engine import EngineConfig
    from hf_synth.engine.server import ServerEngine

    class Counted:
        """The server engine, with the prompts of each call counted."""

        def __init__(self, engine) -> None:
            self.engine, self.calls = engine, []

        def __getattr__(self, name):
            return getattr(self.engine, name)

        def generate(self, prompts, *args, **kwargs):
            self.calls.append(("", len(prompts)))
            return self.engine.generate(prompts, *args, **kwargs)

    def reply(messages, body):
        return reply_for(prompt_text(messages))

    rows = []
    for n in sizes:
        for mode in modes:
            with chat_server(reply, separate=separate, latency_ms=latency_ms) as url:
                config = EngineConfig(
                    backend="server",
                    base_url=url,
                    model="instant",
                    concurrency=width,
                    concurrent_calls=mode == "concurrent",
                )
                engine = Counted(ServerEngine.from_config(config))
                # The server's replies (and its latency) are not subtracted: this is the whole run.
                row = run_self_instruct(engine, seeds, n, lambda: 0.0)
                engine.close()
            row.update(call_stats(engine.calls))
            row.update(
                mode=mode,
                server="own process" if separate else "same process",
                latency_ms=latency_ms,
                load_average=[round(x, 2) for x in os.getloadavg()],
            )
            rows.append(row)
            logging.getLogger("bench").warning("server %s", json.dumps(row))
    return rows


def part_evol(roots: int, rounds: int, width) -> dict:
    import random

    from datasets import Dataset

    from hf_synth import EvolInstruct, EvolInstructConfig

    rng = random.Random(1)
    data = Dataset.from_list([{"instruction": instruction(rng)} for _ in range(roots)])
    teacher = InstantTeacher(max_concurrency=width)
    config = EvolInstructConfig(rounds=rounds, use_judge=True, judge_self_check="off")
    began = time.perf_counter()
    result = EvolInstruct(teacher, config).run(data)
    wall = time.perf_counter() - began
    kept = len(result.dataset)
    total = result.summary.evolved
    own = wall - teacher.seconds
    row = {
        "roots": roots,
        "rounds": rounds,
        "evolved_rows": total,
        "kept": kept,
        "wall_s": round(wall, 1),
        "engine_s": round(teacher.seconds, 1),
        "own_ms_per_evolved_row": round(1000 * own / max(1, total), 3),
        "peak_rss_mb": round(peak_rss_mb()),
        **call_stats(teacher.calls),
    }
    logging.getLogger("bench").warning("evol %s", json.dumps(row))
    return row


def part_filters(n: int) -> dict:
    import random

    from datasets import Dataset

    from hf_synth.filters import length_filter, minhash_dedup_filter, rouge_novelty_filter, split_filtered
    from hf_synth.filters.toxicity import toxicity_filter

    rng = random.Random(2)
    rows = [{"instruction": instruction(rng), "output": reply_for(str(i))} for i in range(n)]
    rows += [dict(r) for r in rng.sample(rows, n // 20)]  # some exact repeats to drop
    data = Dataset.from_list(rows)
    timings = {}
    for name, step in (
        ("rouge_novelty", lambda d: rouge_novelty_filter(d, "instruction")),
        ("minhash", lambda d: minhash_dedup_filter(d, "instruction")),
        ("length", lambda d: length_filter(d, "output", min_words=3)),
        ("toxicity", lambda d: toxicity_filter(d, ["instruction", "output"])),
    ):
        began = time.perf_counter()
        data = step(data)
        timings[name] = round(time.perf_counter() - began, 2)
    kept, dropped = split_filtered(data)
    total = sum(timings.values())
    row = {
        "rows": len(rows),
        "kept": len(kept),
        "seconds": timings,
        "total_s": round(total, 1),
        "ms_per_row": round(1000 * total / len(rows), 3),
        "peak_rss_mb": round(peak_rss_mb()),
    }
    logging.getLogger("bench").warning("filters %s", json.dumps(row))
    return row


class WideEngine(InstantTeacher):
    """A fake GPU in real time: ``slots`` sequences decode together, each decode step takes ``step_s`` of
    wall time whatever the number of live rows, and the prompts admitted in a step add
    ``prefill_s_per_token`` per prompt token to it. A scheduler thread runs the steps; ``generate`` queues
    its prompts (replies are the instant teacher's, made at once) and returns when the last one has
    decoded. Free slots take the next queued prompt at each step, from whatever call queued it: with
    ``concurrent_calls`` the pipeline may have several calls queued (as with a served pool); without it,
    calls run one at a time (as in-process engines do). So the engine waits for hf-synth exactly when no
    prompt is queued: hf-synth's own time overlaps the engine only where the pipeline really overlaps."""

    backend = "simulated-wide"

    def __init__(self, slots: int, step_s: float, prefill_s_per_token: float, concurrent: bool) -> None:
        import threading

        super().__init__("wide", max_concurrency=slots, concurrent_calls=concurrent)
        self.slots, self.step_s, self.prefill = slots, step_s, prefill_s_per_token
        self.prefill_s = 0.0
        self.idle_s = 0.0
        self.row_steps = 0
        self.steps = 0
        self._queue: list = []  # [prompt_tokens, tokens, done event holder]
        self._cond = threading.Condition()
        self._one_call = threading.Lock()
        threading.Thread(target=self._schedule, name="wide-engine", daemon=True).start()

    def _schedule(self) -> None:
        from collections import deque

        queue = deque()
        live: list[list] = []
        step_start = time.perf_counter()
        while True:
            with self._cond:
                while not self._queue and not queue and not live:
                    waited = time.perf_counter()
                    self._cond.wait()
                    self.idle_s += time.perf_counter() - waited
                    step_start = max(step_start, time.perf_counter())
                queue.extend(self._queue)
                self._queue.clear()
            admitted = 0
            while queue and len(live) < self.slots:
                item = queue.popleft()
                admitted += item[0]
                live.append(item)
            duration = self.step_s + admitted * self.prefill
            step_end = step_start + duration
            delay = step_end - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            self.prefill_s += admitted * self.prefill
            self.row_steps += len(live)
            self.steps += 1
            still = []
            for item in live:
                item[1] -= 1
                if item[1] > 0:
                    still.append(item)
                else:
                    call = item[2]
                    call[0] -= 1
                    if call[0] == 0:
                        call[1].set()
            live = still
            step_start = step_end  # late steps catch up: the engine's clock is the wall's

    def generate(self, prompts, sampling=None, *, on_output=None, **kwargs):
        import threading

        outputs = super().generate(prompts, sampling, **kwargs)
        if not outputs:
            return outputs
        with contextlib.nullcontext() if self.concurrent_calls else self._one_call:
            call = [len(outputs), threading.Event()]
            with self._cond:
                self._queue.extend([o.prompt_tokens, o.completion_tokens, call] for o in outputs)
                self._cond.notify()
            call[1].wait()
        if on_output is not None:
            for index, output in enumerate(outputs):
                on_output(index, output)
        return outputs


def part_wide(slots: int, n: int, step_s: float, prefill: float, seeds, chunk: int, concurrent: bool) -> dict:
    from hf_synth import EvolInstruct, EvolInstructConfig, SelfInstruct, SelfInstructConfig

    engine = WideEngine(slots, step_s, prefill, concurrent)
    began = time.perf_counter()
    si = SelfInstruct(engine, SelfInstructConfig(num_instructions=n, checkpoint_every=chunk)).run(seeds)
    si_wall = time.perf_counter() - began
    roots = si.dataset.select_columns(["instruction"])
    evol = EvolInstructConfig(rounds=2, judge_self_check="off", checkpoint_every=chunk)
    EvolInstruct(engine, evol).run(roots)
    wall = time.perf_counter() - began
    decode_s = engine.steps * step_s
    row = {
        "slots": slots,
        "concurrent_calls": concurrent,
        "self_instruct_target": n,
        "checkpoint_every": chunk,
        "step_ms": step_s * 1000,
        "prefill_us_per_token": prefill * 1e6,
        "wall_s": round(wall, 1),
        "self_instruct_wall_s": round(si_wall, 1),
        "decode_s": round(decode_s, 1),
        "prefill_s": round(engine.prefill_s, 1),
        "engine_idle_s": round(engine.idle_s, 1),
        # Decoded row-steps over the slot-steps the run's wall time holds, prefill time left out (the
        # engine is busy then, not its slots idle).
        "slot_utilization": round(engine.row_steps * step_s / (slots * (wall - engine.prefill_s)), 3),
        "slot_utilization_decoding": round(engine.row_steps / (slots * engine.steps), 3),
        **call_stats(engine.calls),
    }
    logging.getLogger("bench").warning("wide %s", json.dumps(row))
    return row


_RESUME_RUN = """
import json, sys
sys.path.insert(0, {root!r})
from datasets import Dataset
from datasets.utils.logging import disable_progress_bar
from bench.instant_teacher import InstantTeacher
from hf_synth import SelfInstruct, SelfInstructConfig
disable_progress_bar()
seeds = Dataset.from_list([json.loads(l) for l in open({seeds!r}) if l.strip()])
config = SelfInstructConfig(num_instructions={n})
teacher = InstantTeacher(max_concurrency={width}, concurrent_calls={concurrent})
result = SelfInstruct(teacher, config, checkpoint_dir={ckpt!r}).run(seeds)
with open({out!r}, "w") as f:
    for part in (result.dataset, result.rejected):
        for row in part:
            f.write(json.dumps(row, sort_keys=True) + "\\n")
"""


def part_resume(n: int, width: int, concurrent: bool) -> dict:
    """kill -9 during an n-row run with the instant teacher and checkpoints, restart: same rows?"""
    import os
    import signal
    import subprocess

    path = SEEDS if SEEDS.exists() else OWN_SEEDS
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)

        def script(name: str) -> list[str]:
            code = _RESUME_RUN.format(
                root=str(HERE.parent),
                seeds=str(path),
                n=n,
                width=width,
                concurrent=concurrent,
                ckpt=str(tmp / name),
                out=str(tmp / f"{name}.jsonl"),
            )
            return [sys.executable, "-c", code]

        began = time.perf_counter()
        subprocess.run(script("clean"), env=env, check=True)
        clean_s = time.perf_counter() - began
        proc = subprocess.Popen(script("killed"), env=env)
        began = time.perf_counter()
        while time.perf_counter() - began < clean_s / 2:  # half way through
            if proc.poll() is not None:
                raise RuntimeError("the run finished before it could be killed")
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        chunks = sum(1 for _ in (tmp / "killed").glob("**/chunk-*/state.json"))
        rounds = sum(1 for _ in (tmp / "killed").glob("round-*/kept/state.json"))
        began = time.perf_counter()
        subprocess.run(script("killed"), env=env, check=True)
        resume_s = time.perf_counter() - began
        clean = (tmp / "clean.jsonl").read_text().splitlines()
        resumed = (tmp / "killed.jsonl").read_text().splitlines()
    ids = [json.loads(line)["id"] for line in resumed]
    row = {
        "target": n,
        "concurrent_calls": concurrent,
        "clean_s": round(clean_s, 1),
        "killed_after_s": round(clean_s / 2, 1),
        "rounds_on_disk_at_kill": rounds,
        "chunks_on_disk_at_kill": chunks,
        "resume_s": round(resume_s, 1),
        "rows": len(resumed),
        "same_rows": resumed == clean,
        "duplicates": len(ids) - len(set(ids)),
    }
    logging.getLogger("bench").warning("resume %s", json.dumps(row))
    return row


def table_server(rows) -> str:
    lines = [
        f"**server backend, loopback instant server ({rows[0]['server']}, {rows[0]['latency_ms']:g} ms per "
        "answer)**",
        "",
        "| target | mode | kept | rounds | wall s | ms per kept row | engine calls | prompts/call median / max "
        "| peak RSS MB | load average after |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['target']:,} | {r['mode']} | {r['kept']:,} | {r['rounds']} | {r['wall_s']} "
            f"| {r['own_ms_per_row']} | {r['engine_calls']} | {r['prompts_median']:.0f} / {r['prompts_max']} "
            f"| {r['peak_rss_mb']:,} | {r['load_average'][0]} |"
        )
    return "\n".join(lines)


def table_self_instruct(rows, title) -> str:
    lines = [
        f"**{title}**",
        "",
        "| target | kept | rounds | wall s | own ms/kept row | engine calls | prompts/call median / max "
        "| peak RSS MB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['target']:,} | {r['kept']:,} | {r['rounds']} | {r['wall_s']} | {r['own_ms_per_row']} "
            f"| {r['engine_calls']} | {r['prompts_median']:.0f} / {r['prompts_max']} | {r['peak_rss_mb']:,} |"
        )
    stages = [s for s in rows[-1]["stages"]]
    lines += ["", "Stages (ms per kept row / share of the run):", ""]
    lines.append("| stage | " + " | ".join(f"{r['target']:,}" for r in rows) + " |")
    lines.append("|---|" + "---|" * len(rows))
    for s in stages:
        cells = []
        for r in rows:
            v = r["stages"].get(s)
            cells.append(f"{v['ms_per_row']} / {100 * v['share']:.0f}%" if v else "-")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--parts", default="self-instruct,server,evol,filters,wide,resume")
    parser.add_argument("--sizes", default="1000,5000,20000,50000")
    parser.add_argument("--server-sizes", default="1000,5000")
    parser.add_argument(
        "--server-modes",
        default="one-call,concurrent",
        help="one-call: --no-concurrent-calls; concurrent: the server backend's default (rounds and chunks "
        "overlap)",
    )
    parser.add_argument(
        "--server-process",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the instant chat server in a process of its own (bench/instant_chat_server.py) rather "
        "than in threads of the benchmark's process",
    )
    parser.add_argument(
        "--server-latency-ms", type=float, default=0.0, help="every answer of the chat server waits this long"
    )
    parser.add_argument("--width", type=int, default=256, help="max_concurrency the instant teacher reports")
    parser.add_argument("--evol-roots", type=int, default=10_000)
    parser.add_argument("--evol-rounds", type=int, default=3)
    parser.add_argument("--filter-rows", type=int, default=50_000)
    parser.add_argument("--wide-slots", type=int, default=256)
    parser.add_argument("--wide-target", type=int, default=2000)
    parser.add_argument("--wide-step-ms", type=float, default=25.0)
    parser.add_argument("--wide-prefill-us", type=float, default=20.0)
    parser.add_argument("--wide-chunks", default="1024", help="checkpoint_every values to compare")
    parser.add_argument(
        "--wide-modes",
        default="concurrent,one-call",
        help="concurrent: the engine takes concurrent calls (a served pool; the pipeline overlaps rounds and "
        "chunks); one-call: one call at a time (as in-process engines; no overlap)",
    )
    parser.add_argument("--resume-target", type=int, default=20_000)
    parser.add_argument("--out", default="runs/bench_pipeline_cost.json")
    args = parser.parse_args()

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    from datasets.utils.logging import disable_progress_bar

    disable_progress_bar()
    from huggingface_hub.utils import disable_progress_bars

    disable_progress_bars()
    seeds, seed_name = load_seeds()
    parts = args.parts.split(",")
    results: dict = {"seeds": f"{seed_name} ({len(seeds)} rows)"}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        out.write_text(json.dumps(results, indent=2))

    if "self-instruct" in parts:
        results["self_instruct"] = part_self_instruct(
            [int(s) for s in args.sizes.split(",")], seeds, args.width
        )
        save()
        print(table_self_instruct(results["self_instruct"], "In-process instant teacher"), "\n", flush=True)
    if "server" in parts:
        sizes = [int(s) for s in args.server_sizes.split(",")]
        results["server"] = part_server(
            sizes,
            seeds,
            args.width,
            args.server_modes.split(","),
            args.server_process,
            args.server_latency_ms,
        )
        save()
        print(table_server(results["server"]), "\n", flush=True)
    if "evol" in parts:
        results["evol"] = part_evol(args.evol_roots, args.evol_rounds, args.width)
        save()
        print(json.dumps(results["evol"]), flush=True)
    if "filters" in parts:
        results["filters"] = part_filters(args.filter_rows)
        save()
        print(json.dumps(results["filters"]), flush=True)
    if "wide" in parts:
        results["wide"] = [
            part_wide(
                args.wide_slots,
                args.wide_target,
                args.wide_step_ms / 1000,
                args.wide_prefill_us / 1e6,
                seeds,
                int(chunk),
                mode == "concurrent",
            )
            for chunk in args.wide_chunks.split(",")
            for mode in args.wide_modes.split(",")
        ]
        save()
        print(json.dumps(results["wide"]), flush=True)
    if "resume" in parts:
        results["resume"] = [part_resume(args.resume_target, args.width, c) for c in (False, True)]
        save()
        print(json.dumps(results["resume"]), flush=True)
    print(f"Wrote {out}")


if __name__ == "__main__":
    main()
