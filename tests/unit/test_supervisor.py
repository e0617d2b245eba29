"""The supervisor of `sieve up` restarts what dies, later and later while it keeps dying at once."""

from __future__ import annotations

import subprocess
import sys

from sieve.supervisor import STEADY_SECONDS, Supervisor


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _exits_at_once() -> subprocess.Popen:
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait()
    return process


def test_a_program_that_keeps_dying_at_once_is_restarted_later_and_later_and_each_restart_says_why():
    clock, said = Clock(), []
    supervisor = Supervisor(say=said.append, clock=clock)
    program = supervisor.add("worker 1", _exits_at_once)
    delays = []
    for _ in range(8):
        supervisor.check()  # notes the death and when to restart
        delays.append(program.restart_at - clock.now)
        clock.now = program.restart_at
        supervisor.check()  # restarts it, and it dies again
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60]
    assert said[0] == "sieve worker 1 exited with 3, 0 s after it started (death 1 in a row); restarting it in 1 s"
    assert len(said) == 8


def test_a_program_that_ran_steadily_is_restarted_at_once_and_its_count_of_quick_deaths_starts_over():
    clock, said = Clock(), []
    supervisor = Supervisor(say=said.append, clock=clock)
    program = supervisor.add("api", _exits_at_once)
    for _ in range(3):
        supervisor.check()
        clock.now = program.restart_at
        supervisor.check()
    assert program.quick_deaths == 3
    clock.now += STEADY_SECONDS
    supervisor.check()
    assert program.restart_at == clock.now and program.quick_deaths == 0
    assert said[-1] == "sieve api exited with 3; restarting it"


def test_a_program_that_cannot_be_started_again_is_retried_with_the_reason():
    clock, said = Clock(), []
    supervisor = Supervisor(say=said.append, clock=clock)
    attempts = []

    def launch():
        attempts.append(clock.now)
        if len(attempts) > 1:
            raise RuntimeError("the embedded Redis did not start")
        return _exits_at_once()

    program = supervisor.add("redis", launch)
    supervisor.check()
    clock.now = program.restart_at
    supervisor.check()
    assert said[-1] == (
        "sieve redis did not start (the embedded Redis did not start), 0 s after it started "
        "(death 2 in a row); restarting it in 2 s"
    )
    clock.now = program.restart_at
    supervisor.check()
    assert attempts == [0.0, 1.0, 3.0]
