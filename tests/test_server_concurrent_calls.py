"""The server backend called from several threads at once (``concurrent_calls``): one loop, one client and
one gate shared by every call; each call gets its own replies in order, its own errors, and the gate
bounds the requests in flight across calls. Counts and events, never timings (timeouts only keep a broken
implementation from hanging the test session)."""

import threading

import pytest

from bench.instant_teacher import InstantTeacher, prompt_text, reply_for
from hf_synth import SelfInstruct, SelfInstructConfig
from hf_synth.engine import EngineConfig, SamplingParams, load_engine
from hf_synth.engine.protocol import engine_takes_concurrent_calls, engine_workers
from hf_synth.engine.server import ServerError
from hf_synth.engine.server_loop import BusyClock

from .chat_server import FakeChatServer
from .test_pipeline_scale import _seeds

WAIT = 30.0  # seconds a thread may take before the test calls it hung


def _engine(server, **kwargs):
    engine = load_engine(EngineConfig(backend="server", base_url=server.url, model=server.model, **kwargs))
    engine.backoff_base = 0.01
    return engine


def _wait_for(condition) -> None:
    stop = threading.Event()
    for _ in range(int(WAIT / 0.01)):
        if condition():
            return
        stop.wait(0.01)
    raise AssertionError("the server never saw the requests")


def _answers(outputs):
    return [o.text for o in outputs]


class Calls:
    """Runs ``engine.generate`` in threads and keeps each one's result or error."""

    def __init__(self) -> None:
        self.results: dict[str, object] = {}
        self.threads: list[threading.Thread] = []

    def start(self, name: str, engine, prompts, sampling=None) -> None:
        def run() -> None:
            try:
                self.results[name] = engine.generate(prompts, sampling, progress=False)
            except BaseException as err:  # noqa: BLE001 - kept for the test to look at
                self.results[name] = err

        thread = threading.Thread(target=run, name=f"call-{name}", daemon=True)
        thread.start()
        self.threads.append(thread)

    def join(self) -> None:
        for thread in self.threads:
            thread.join(WAIT)
        assert not any(t.is_alive() for t in self.threads), "a call never returned"


def test_the_server_backend_declares_concurrent_calls_and_the_option_turns_it_off():
    with FakeChatServer(model="fake-model") as server:
        engine = _engine(server)
        assert engine_takes_concurrent_calls(engine) and engine_workers(engine) == 2
        off = _engine(server, concurrent_calls=False)
        assert not engine_takes_concurrent_calls(off) and engine_workers(off) == 1


def test_two_threads_at_once_get_their_own_replies_in_order_within_one_gate():
    both_in_flight = threading.Barrier(2, timeout=WAIT)
    seen: set[str] = set()
    lock = threading.Lock()
    met: list[str] = []

    def reply(messages, body):
        text = messages[-1]["content"]
        tag = text.split()[0]
        with lock:
            first = tag not in seen
            seen.add(tag)
        if first:  # the first request of each call waits for the other call's first request
            both_in_flight.wait()
            met.append(tag)
        return f"reply to {text}"

    with FakeChatServer(reply, model="fake-model") as server:
        engine = _engine(server, concurrency=4)
        server.gate = 4  # the first requests wait until 4 are in flight together (one gate for both calls)
        prompts = {tag: [f"{tag} question {i}" for i in range(30)] for tag in ("alpha", "beta")}
        calls = Calls()
        for tag, asked in prompts.items():
            calls.start(tag, engine, asked, SamplingParams(max_new_tokens=20))
        calls.join()
        for tag, asked in prompts.items():
            assert _answers(calls.results[tag]) == [f"reply to {p}" for p in asked]
        assert sorted(met) == ["alpha", "beta"]  # both calls had requests in flight at the same time
        assert server.gate_reached and server.max_in_flight == 4  # never more than concurrency in all
        assert engine.stats.prompts == 60 == len(server.bodies)


def test_an_error_in_one_call_is_raised_in_that_call_only():
    failed = threading.Event()
    waited: list[bool] = []
    lock = threading.Lock()
    first: list[str] = []

    def reply(messages, body):
        with lock:
            is_first = not first
            first.append(messages[-1]["content"])
        if is_first:  # the other call's first answer waits until the failing call has failed
            waited.append(failed.wait(WAIT))
        return f"reply to {messages[-1]['content']}"

    with FakeChatServer(reply, model="fake-model") as server:
        server.refuse = {"top_k"}  # this server answers 400 to requests that carry top_k
        engine = _engine(server, concurrency=4)
        good = [f"good question {i}" for i in range(12)]
        calls = Calls()
        calls.start("good", engine, good)
        _wait_for(lambda: server.in_flight >= 1)  # the good call is in flight before the bad one starts
        try:
            engine.generate([f"bad question {i}" for i in range(8)], SamplingParams(top_k=20), progress=False)
        except ServerError as err:
            error = err
        finally:
            failed.set()
        calls.join()
        assert "HTTP 400" in str(error) and "top_k" in str(error)
        assert waited == [True]  # the good call was still running when the bad one failed
        assert _answers(calls.results["good"]) == [f"reply to {p}" for p in good]
        assert _answers(engine.generate(good[:2], progress=False)) == [f"reply to {p}" for p in good[:2]]


def test_close_with_calls_in_flight_fails_them_clearly_and_a_later_call_starts_again():
    release = threading.Event()

    def reply(messages, body):
        release.wait(WAIT)  # held until the test lets the server answer
        return f"reply to {messages[-1]['content']}"

    with FakeChatServer(reply, model="fake-model") as server:
        engine = _engine(server, concurrency=4)
        calls = Calls()
        calls.start("one", engine, [f"one {i}" for i in range(3)])
        calls.start("two", engine, [f"two {i}" for i in range(3)])
        _wait_for(lambda: server.in_flight >= 2)
        engine.close()
        calls.join()
        release.set()
        for name in ("one", "two"):
            assert isinstance(calls.results[name], ServerError), calls.results[name]
            assert "closed while this call was in flight" in str(calls.results[name])
        assert _answers(engine.generate(["again"], progress=False)) == ["reply to again"]
        engine.close()


class CountedCalls:
    """The engine, with the most ``generate`` calls it had running at once counted."""

    def __init__(self, engine) -> None:
        self.engine, self.running, self.most_running = engine, 0, 0
        self._lock = threading.Lock()

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def generate(self, *args, **kwargs):
        with self._lock:
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            return self.engine.generate(*args, **kwargs)
        finally:
            with self._lock:
                self.running -= 1


@pytest.fixture
def instant_server():
    with FakeChatServer(
        lambda messages, body: reply_for(prompt_text(messages)), model="instant-teacher"
    ) as s:
        yield s


def _run(engine, **options):
    config = SelfInstructConfig(num_instructions=160, filter_toxicity=False, **options)
    return SelfInstruct(engine, config).run(_seeds())


def _rows(result):
    return result.dataset.to_list(), result.rejected.to_list()


def test_self_instruct_through_the_server_overlapped_is_deterministic_and_streams_the_same_rows(
    instant_server,
):
    """As tests/test_pipeline_scale.py does for in-process engines: chunks streamed through the steps with
    two calls in flight give the rows of one call at a time; rounds overlapped give the rows of the
    instant teacher overlapped the same way, run after run."""
    streamed = CountedCalls(_engine(instant_server, concurrency=8))
    one_at_a_time = _engine(instant_server, concurrency=8, concurrent_calls=False)
    chunks = {"checkpoint_every": 16, "overlap_rounds": False}
    assert _rows(_run(streamed, **chunks)) == _rows(_run(one_at_a_time, **chunks))
    assert streamed.most_running >= 2  # calls really ran at once
    overlapped = CountedCalls(_engine(instant_server, concurrency=8))
    result = _run(overlapped)
    assert result.summary.rounds >= 3 and overlapped.most_running >= 2
    assert _rows(_run(_engine(instant_server, concurrency=8))) == _rows(result)
    local = _run(InstantTeacher(max_concurrency=8, concurrent_calls=True))
    assert _rows(local)[0] == _rows(result)[0]


def test_the_seconds_of_overlapping_calls_are_counted_once():
    now = [0.0]
    clock = BusyClock(lambda: now[0])
    clock.started()  # call A at 0
    now[0] = 1.0
    clock.started()  # call B at 1
    now[0] = 3.0
    first = clock.finished()  # A ends at 3
    now[0] = 5.0
    second = clock.finished()  # B ends at 5
    now[0] = 9.0
    clock.started()  # C alone, 9 to 10
    now[0] = 10.0
    third = clock.finished()
    assert (first, second, third) == (3.0, 2.0, 1.0)  # 6 s busy, not 4 + 4 + 1
