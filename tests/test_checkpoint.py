import pytest
from datasets import Dataset, Features, Value

from hf_synth.checkpoint import Checkpointer, CheckpointMismatchError


def test_empty_dataset_round_trips(tmp_path):
    ckpt = Checkpointer(tmp_path)
    empty = Dataset.from_dict({"a": []}, features=Features({"a": Value("string")}))
    ckpt.save(empty, "x/empty")
    loaded = ckpt.load("x/empty")
    assert len(loaded) == 0 and loaded.features == empty.features


def test_map_keeps_finished_chunks_and_reuses_them(tmp_path):
    data = Dataset.from_dict({"id": [f"r{i}" for i in range(7)], "n": list(range(7))})
    calls = []

    def double(batch):
        calls.append(list(batch["n"]))
        return {"double": [n * 2 for n in batch["n"]]}

    ckpt = Checkpointer(tmp_path, chunk_size=3)
    first = ckpt.map(data, double, "step", batched=True)
    assert first["double"] == [n * 2 for n in range(7)] and len(calls) == 3
    again = Checkpointer(tmp_path, chunk_size=3)
    second = again.map(data, lambda b: pytest.fail("recomputed a finished chunk"), "step", batched=True)
    assert second.to_list() == first.to_list() and again.reused_chunks == 3
    # different rows never pick up these chunks
    other = Dataset.from_dict({"id": ["z0"], "n": [5]})
    assert again.map(other, double, "step", batched=True)["double"] == [10]


def test_no_half_written_chunks_are_left_behind(tmp_path):
    data = Dataset.from_dict({"id": ["a", "b", "c", "d"], "n": [1, 2, 3, 4]})

    def explode_on_second_chunk(batch):
        if 3 in batch["n"]:
            raise RuntimeError("killed")
        return {"m": batch["n"]}

    with pytest.raises(RuntimeError):
        Checkpointer(tmp_path, chunk_size=2).map(data, explode_on_second_chunk, "s", batched=True)
    chunks = sorted(p.name for p in tmp_path.glob("s-*/*"))
    assert chunks == ["chunk-00000"]


def test_fingerprint_mismatch_names_the_changed_keys(tmp_path):
    assert Checkpointer(tmp_path).bind({"a": 1, "b": 2}) is False
    assert Checkpointer(tmp_path).bind({"a": 1, "b": 2}) is True
    with pytest.raises(CheckpointMismatchError, match=r"\(b: 2 → 3\).*overwrite=True"):
        Checkpointer(tmp_path).bind({"a": 1, "b": 3})
    assert Checkpointer(tmp_path).bind({"a": 1, "b": 3}, overwrite=True) is False


def test_without_a_folder_nothing_is_written(tmp_path):
    ckpt = Checkpointer(None)
    data = Dataset.from_dict({"n": [1]})
    assert ckpt.map(data, lambda b: {"m": b["n"]}, "s", batched=True)["m"] == [1]
    assert ckpt.bind({"x": 1}) is False
