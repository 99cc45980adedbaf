"""``ntx run``'s supervisor: a service that dies is started again with backoff and the
event is logged; one that ran a while starts over at the first backoff."""

from __future__ import annotations

import json
from pathlib import Path

from services.supervisor import FIRST_BACKOFF_S, LONGEST_BACKOFF_S, STABLE_AFTER_S, Supervisor


class FakeProc:
    def __init__(self) -> None:
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode


class FakeProcesses:
    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: dict[str, FakeProc] = {}
        self.starts: list[str] = []

    def start(self, name: str) -> FakeProc:
        self.procs[name] = FakeProc()
        self.starts.append(name)
        return self.procs[name]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def supervised(tmp_path: Path):
    procs, clock, said = FakeProcesses(tmp_path), Clock(), []
    for name in ("intake", "scheduler", "alerts"):
        procs.start(name)
    procs.starts.clear()
    return procs, clock, said, Supervisor(procs, say=said.append, clock=clock)


def test_a_killed_service_is_restarted_after_the_backoff_and_logged(tmp_path):
    procs, clock, said, sup = supervised(tmp_path)
    sup.check()
    procs.procs["intake"].returncode = -9
    sup.check()
    assert procs.starts == [] and said == [
        "ntx: intake exited with code -9 after 0s; restarting in 1s"
    ]
    clock.now += FIRST_BACKOFF_S
    sup.check()
    assert procs.starts == ["intake"] and said[-1] == "ntx: intake restarted"
    logged = [json.loads(line) for line in (tmp_path / "intake.log").read_text().splitlines()]
    assert [entry["msg"] for entry in logged] == [
        "supervisor: exited with code -9 after 0s; restarting in 1s",
        "supervisor: restarted",
    ]
    assert procs.procs["scheduler"].poll() is None  # the others are left alone


def test_quick_deaths_back_off_up_to_the_longest_and_a_stable_run_resets(tmp_path):
    procs, clock, said, sup = supervised(tmp_path)
    sup.check()
    delays = []
    for _ in range(8):
        procs.procs["alerts"].returncode = 1
        sup.check()
        delays.append(sup.due["alerts"] - clock.now)
        clock.now = sup.due["alerts"]
        sup.check()
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30] and LONGEST_BACKOFF_S == 30
    clock.now += STABLE_AFTER_S
    procs.procs["alerts"].returncode = 1
    sup.check()
    assert sup.due["alerts"] - clock.now == FIRST_BACKOFF_S
    assert sup.restarts == 8
