"""The server backend against a fault-injecting chat-completions server on the loopback interface."""

import json
import logging

import pytest
from datasets import Dataset

from hf_synth import SelfInstruct, SelfInstructConfig
from hf_synth.checkpoint import Checkpointer
from hf_synth.cli import main
from hf_synth.engine import EngineConfig, SamplingParams, load_engine
from hf_synth.engine.server import ServerEngine, ServerError

from .chat_server import FakeChatServer
from .conftest import ScriptedEngine
from .test_self_instruct import SEEDS, stateless_reply

KEY = "sk-secret-test-key-1234"
PROMPTS = [
    f"Question {i}: name a {w}." for i, w in enumerate(["river", "tree", "bird", "city", "star", "song"])
]


def _text(messages) -> str:
    return "\n".join(m["content"] for m in messages)


def _engine(server, **kwargs) -> ServerEngine:
    engine = load_engine(EngineConfig(backend="server", base_url=server.url, **kwargs))
    engine.backoff_base = 0.01  # retries in milliseconds, not seconds
    return engine


@pytest.fixture
def server():
    with FakeChatServer(lambda messages, body: f"answer to {_text(messages)} seed {body.get('seed')}") as s:
        yield s


def test_order_sampling_and_counts(server):
    engine = _engine(server, model="fake-model", concurrency=3)
    server.gate = 3  # the first requests wait until 3 are in flight together
    params = SamplingParams(max_new_tokens=40, temperature=0.3, top_p=0.8, seed=5)
    outputs = engine.generate(PROMPTS, params)
    assert [o.text.split(" seed ")[0] for o in outputs] == [f"answer to {p}" for p in PROMPTS]  # prompt order
    assert server.gate_reached and server.max_in_flight == 3  # 3 at once, never more
    body = server.bodies[0]
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["model"]) == (
        40,
        0.3,
        0.8,
        "fake-model",
    )
    assert "top_k" not in body and "repetition_penalty" not in body  # defaults are not sent
    assert all(o.completion_tokens == len(o.text.split()) and o.prompt_tokens > 0 for o in outputs)
    assert engine.stats.completion_tokens == sum(o.completion_tokens for o in outputs)
    # a seed per request, from the sampling seed and the prompt: the same question is asked the same way
    seeds = [o.text.split(" seed ")[1] for o in outputs]
    assert len(set(seeds)) == len(PROMPTS)
    again = engine.generate(PROMPTS, params)
    assert [o.text for o in again] == [o.text for o in outputs]
    other = engine.generate(PROMPTS, SamplingParams(max_new_tokens=40, seed=6))
    assert [o.text for o in other] != [o.text for o in outputs]
    short = engine.generate(PROMPTS[:1], SamplingParams(max_new_tokens=2))[0]
    assert short.finish_reason == "length" and short.completion_tokens == 2


def test_the_served_model_is_asked_when_not_named(server):
    engine = _engine(server)
    assert engine.model_id == "fake-model" and engine.describe()["backend"] == "server"
    assert engine.generate(PROMPTS[:1])[0].text.startswith("answer to")


@pytest.mark.parametrize("fault", ["429", "500", "503", "broken", "disconnect", "slow"])
def test_retryable_faults_are_retried_and_the_result_is_unchanged(server, fault):
    engine = _engine(server, model="fake-model", concurrency=2, request_timeout=2.0)
    expected = [o.text for o in engine.generate(PROMPTS)]
    server.faults = [fault, None, fault, fault]
    server.slow_seconds = 600.0  # "slow" answers only when the server stops: abandoned and asked again
    assert [o.text for o in engine.generate(PROMPTS)] == expected
    assert len(server.bodies) == 2 * len(PROMPTS) + 3  # each of the 3 faults cost exactly one more request


def test_missing_token_counts_are_warned_once_and_counted_as_zero(server, caplog):
    engine = _engine(server, model="fake-model")
    server.faults = ["no_usage", "no_usage"]
    with caplog.at_level(logging.WARNING):
        outputs = engine.generate(PROMPTS[:3], SamplingParams(seed=1))
    assert sum(o.completion_tokens == 0 for o in outputs) == 2
    assert sum("no usable token counts" in r.getMessage() for r in caplog.records) == 1


def test_a_server_that_stays_down_is_one_clear_error(server):
    engine = _engine(server, model="fake-model", max_retries=2)
    server.faults = ["503"] * 10
    with pytest.raises(ServerError) as err:
        engine.generate(PROMPTS[:1])
    assert server.url in str(err.value) and "HTTP 503 on 3 tries" in str(err.value)


def test_refusals_fail_at_once_naming_url_status_and_fix(server):
    engine = _engine(server, model="no-such-model")
    with pytest.raises(ServerError, match=r"HTTP 404.*no-such-model"):
        engine.generate(PROMPTS[:1])
    assert len(server.bodies) == 1  # not retried
    server.refuse = {"top_k"}
    engine = _engine(server, model="fake-model")
    with pytest.raises(ServerError, match=r"HTTP 400.*does not take top_k"):
        engine.generate(PROMPTS[:2], SamplingParams(top_k=20))
    assert engine.generate(PROMPTS[:1], SamplingParams(repetition_penalty=1.2))  # sent as it is named
    # (the refused call's second request may reach the server after this one: look for it, not at [-1])
    assert [b["repetition_penalty"] for b in server.bodies if "repetition_penalty" in b] == [1.2]


def test_prefill_is_continued_or_falls_back(server):
    server.reply = lambda messages, body: (
        "1. A river" if body.get("continue_final_message") else "Here: 1. A river"
    )
    prompt = [{"role": "user", "content": "List rivers."}, {"role": "assistant", "content": "Here:"}]
    engine = _engine(server, model="fake-model")
    assert engine.generate([prompt])[0].text == "1. A river"
    assert server.bodies[-1]["messages"][-1] == {"role": "assistant", "content": "Here:"}
    assert server.bodies[-1]["add_generation_prompt"] is False
    server.refuse = {"continue_final_message"}
    engine = _engine(server, model="fake-model")
    assert engine.generate([prompt])[0].text.strip() == "1. A river"  # the repeated prefill removed
    assert server.bodies[-1]["messages"] == [{"role": "user", "content": "List rivers."}]


def test_api_key_from_the_environment_never_shows(server, monkeypatch, caplog, tmp_path):
    server.api_key = KEY
    monkeypatch.setenv("MY_SERVER_KEY", KEY)
    with pytest.raises(ValueError, match="UNSET_KEY_VAR"):
        load_engine(EngineConfig(backend="server", base_url=server.url, api_key_env="UNSET_KEY_VAR"))
    caplog.set_level(logging.DEBUG)
    engine = _engine(server, api_key_env="MY_SERVER_KEY")
    engine.generate(PROMPTS[:2])
    assert server.headers[-1]["authorization"] == f"Bearer {KEY}"
    monkeypatch.setenv("MY_SERVER_KEY", "wrong-key")
    with pytest.raises(ServerError) as err:
        _engine(server, api_key_env="MY_SERVER_KEY", model="fake-model").generate(PROMPTS[:1])
    out = tmp_path / "run"
    monkeypatch.setenv("MY_SERVER_KEY", KEY)
    server.reply = lambda messages, body: ScriptedEngine(stateless_reply).reply(_text(messages))
    args = [
        "self-instruct",
        "--backend",
        "server",
        "--base-url",
        server.url,
        "--api-key-env",
        "MY_SERVER_KEY",
    ]
    assert main([*args, "--num-instructions", "3", "--output", str(out)]) == 0
    everything = str(err.value) + repr(engine) + json.dumps(engine.describe()) + caplog.text
    everything += "".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())
    assert KEY not in everything and "MY_SERVER_KEY" in (out / "config.yaml").read_text()


def test_a_run_stopped_by_a_dead_server_resumes_without_repeating(server, tmp_path):
    engine = _engine(server, model="fake-model", concurrency=1, max_retries=1)
    prompts = [f"Task {i}" for i in range(10)]
    expected = [o.text for o in engine.generate(prompts)]
    asked = len(server.bodies)
    checkpointer = Checkpointer(tmp_path / "ckpt")
    server.faults = [None] * 4 + ["disconnect"] * 100  # the server dies after 4 answers
    with pytest.raises(ServerError):
        checkpointer.engine(engine).generate(prompts)
    checkpointer.close()
    server.faults = []  # back
    before = len(server.bodies)
    checkpointer = Checkpointer(tmp_path / "ckpt")
    assert [o.text for o in checkpointer.engine(engine).generate(prompts)] == expected
    checkpointer.close()
    assert (
        len(server.bodies) - before == 6 and before - asked >= 4
    )  # the 4 journaled ones are not asked again


def test_self_instruct_through_a_served_teacher_equals_the_in_process_one(server):
    server.reply = lambda messages, body: stateless_reply(_text(messages))
    config = SelfInstructConfig(num_instructions=8, max_rounds=2, requests_per_round=3, seed=4)
    served = SelfInstruct(_engine(server, model="fake-model"), config).run(Dataset.from_list(SEEDS))
    local = SelfInstruct(ScriptedEngine(stateless_reply, model_id="fake-model"), config).run(
        Dataset.from_list(SEEDS)
    )
    assert served.dataset["instruction"] == local.dataset["instruction"]
    assert served.dataset["output"] == local.dataset["output"]
    assert set(served.dataset["model"]) == {"fake-model"}


def test_config_checks():
    with pytest.raises(ValueError, match="--base-url"):
        EngineConfig(backend="server")
    with pytest.raises(ValueError, match="drop one"):
        EngineConfig(backend="continuous", base_url="http://127.0.0.1:1")
    assert EngineConfig(base_url="http://127.0.0.1:1").uses_server
    with pytest.raises(ServerError, match=r"Cannot list the models of http://127.0.0.1:1/v1/models"):
        load_engine(EngineConfig(base_url="http://127.0.0.1:1"))


def test_several_servers_share_the_requests(server):
    with FakeChatServer(server.reply) as second:
        engine = load_engine(EngineConfig(base_url=f"{server.url}, {second.url}/v1", model="fake-model"))
        outputs = engine.generate(PROMPTS)
        assert len(server.bodies) == len(second.bodies) == len(PROMPTS) // 2
        assert [o.text.split(" seed ")[0] for o in outputs] == [f"answer to {p}" for p in PROMPTS]
        assert engine.describe()["device"] == f"{server.url}, {second.url}/v1"
