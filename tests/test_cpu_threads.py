"""The thread governor: fewer threads while other processes keep cores busy, all of them again after."""

from __future__ import annotations

from hf_synth.engine.cpu.threads import ThreadGovernor, read_cpu_times


class FakeMachine:
    """CPU times advancing as scripted: each step, the machine is busy ``total`` cores, we ``own``."""

    def __init__(self):
        self.busy = self.own = self.now = 0.0

    def advance(self, total: float, own: float, seconds: float = 1.0) -> None:
        self.busy += total * seconds
        self.own += own * seconds
        self.now += seconds

    def clock(self) -> float:
        return self.now

    def read(self):
        return self.busy, self.own


def _governor(machine, applied):
    governor = ThreadGovernor(2, interval=0.5, reader=machine.read, apply=applied.append, clock=machine.clock)
    governor.start()
    return governor


def test_a_busy_neighbour_takes_a_thread_and_gives_it_back_when_it_stops():
    machine, applied = FakeMachine(), []
    governor = _governor(machine, applied)
    machine.advance(total=2.0, own=1.95)  # alone: we use both cores
    assert governor.update() == 2 and applied == []
    machine.advance(total=2.0, own=1.3)  # a neighbour takes 0.7 of a core
    assert governor.update() == 1 and applied == [1]
    machine.advance(total=2.0, own=1.0)  # it keeps a whole core: stay at one thread
    assert governor.update() == 1 and applied == [1]
    machine.advance(total=1.05, own=1.0)  # it stopped
    assert governor.update() == 2 and applied == [1, 2]


def test_a_light_neighbour_keeps_every_thread_and_the_band_between_changes_nothing():
    machine, applied = FakeMachine(), []
    governor = _governor(machine, applied)
    machine.advance(total=2.0, own=1.7)  # 0.3 of a core: share with both threads
    assert governor.update() == 2
    machine.advance(total=2.0, own=1.2)  # 0.8: give one up
    assert governor.update() == 1
    machine.advance(total=1.45, own=1.0)  # 0.45, between the thresholds: no change
    assert governor.update() == 1 and applied == [1]


def test_stop_restores_every_thread_and_real_cpu_times_are_read():
    machine, applied = FakeMachine(), []
    governor = _governor(machine, applied)
    machine.advance(total=2.0, own=1.0)
    governor.update()
    governor.stop()
    assert applied == [1, 2] and governor.threads == 2
    busy, own = read_cpu_times()
    assert busy > 0 and own > 0


def test_only_the_first_thread_change_of_a_process_is_logged_at_info(monkeypatch, caplog):
    import logging

    from hf_synth.engine.cpu import threads as cpu_threads

    monkeypatch.setattr(cpu_threads, "_announced", False)
    caplog.set_level(logging.DEBUG, logger="hf_synth.engine.cpu.threads")
    for _ in range(2):  # two engine calls, a neighbour coming and going in each
        machine, applied = FakeMachine(), []
        governor = _governor(machine, applied)
        for total, own in [(2.0, 1.0), (1.05, 1.0), (2.0, 1.0)]:
            machine.advance(total=total, own=own)
            governor.update()
        governor.stop()
        assert applied == [1, 2, 1, 2]
    changes = [r for r in caplog.records if "thread(s) now" in r.getMessage()]
    assert len(changes) == 6
    assert [r.levelno for r in changes] == [logging.INFO] + [logging.DEBUG] * 5
