"""Keeps `sieve up`'s processes running: one that dies is started again, later and later while it keeps
dying right after it starts (a port in use, a broken setting), and each restart says why."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

STEADY_SECONDS = 30.0
"""A process that lived this long had started fine: its death is a crash, and it is restarted at once."""
MAX_DELAY_SECONDS = 60.0


class Program:
    def __init__(self, name: str, launch: Callable[[], subprocess.Popen]):
        self.name = name
        self.launch = launch
        self.process: subprocess.Popen | None = None
        self.started_at = 0.0
        self.quick_deaths = 0
        self.restart_at: float | None = None


class Supervisor:
    def __init__(self, say: Callable[[str], None], clock: Callable[[], float] = time.monotonic):
        self.say = say
        self.clock = clock
        self.programs: list[Program] = []

    def add(self, name: str, launch: Callable[[], subprocess.Popen]) -> Program:
        """Starts a program (launch() returns its process); a failure to start the first time propagates."""
        program = Program(name, launch)
        program.process = launch()
        program.started_at = self.clock()
        self.programs.append(program)
        return program

    def check(self) -> None:
        """Restarts what died, or notes when to."""
        for program in self.programs:
            now = self.clock()
            if program.restart_at is not None:
                if now >= program.restart_at:
                    self._restart(program, now)
                continue
            code = program.process.poll()
            if code is None:
                if now - program.started_at >= STEADY_SECONDS:
                    program.quick_deaths = 0
            else:
                self._died(program, now, f"was killed by signal {-code}" if code < 0 else f"exited with {code}")

    def _restart(self, program: Program, now: float) -> None:
        program.restart_at = None
        program.started_at = now
        try:
            program.process = program.launch()
        except Exception as error:  # noqa: BLE001 (any reason it could not start is said, and retried)
            self._died(program, self.clock(), f"did not start ({error})")

    def _died(self, program: Program, now: float, how: str) -> None:
        lived = now - program.started_at
        if lived < STEADY_SECONDS:
            program.quick_deaths += 1
            delay = min(MAX_DELAY_SECONDS, 2.0 ** (program.quick_deaths - 1))
            self.say(
                f"sieve {program.name} {how}, {lived:.0f} s after it started (death {program.quick_deaths} "
                f"in a row); restarting it in {delay:.0f} s"
            )
        else:
            program.quick_deaths = 0
            delay = 0.0
            self.say(f"sieve {program.name} {how}; restarting it")
        program.restart_at = now + delay

    def stop(self, programs: list[Program], timeout: float = 20.0) -> None:
        """SIGTERM to each at once, then waits for them; SIGKILL for any still there after `timeout`."""
        for program in reversed(programs):
            if program.process is not None and program.process.poll() is None:
                program.process.terminate()
        for program in programs:
            if program.process is None:
                continue
            try:
                program.process.wait(timeout)
            except subprocess.TimeoutExpired:
                program.process.kill()
                program.process.wait()
