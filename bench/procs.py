"""The bench's processes: started in their own process group, pinned, watched, and always stopped.

Each server under test runs as a separate process so that its CPU time can be read from
``/proc/<pid>/stat`` and its memory from ``/proc/<pid>/status``, summed over its descendants (a
proxy started with ``--workers N`` forks). Every child gets its own session, so that a Ctrl-C in the
terminal reaches only the orchestrator, which then stops the children itself: ``ProcessSet`` is a
context manager whose exit sends SIGTERM to each child's process group, waits a bounded time and
then sends SIGKILL. On Linux a child is also told (``PR_SET_PDEATHSIG``) to receive SIGTERM if the
orchestrator dies without cleaning up, so even ``kill -9`` on the bench leaves nothing behind.

Core layout (``plan_cores``): the proxy under test is what is measured, so it gets a core of its own;
the load driver and the upstream share the rest. With two cores that is driver + upstream on the
first and the proxy on the second; the report gives each process's CPU per request so that a
saturated driver core is visible rather than silently capping req/s.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
STOP_TIMEOUT = 5.0


class StartError(RuntimeError):
    """A process did not come up: it exited, or its port never accepted a connection."""


@dataclass(frozen=True)
class CoreLayout:
    """Which CPUs each role may run on; empty sets mean "not pinned"."""

    driver: frozenset[int]
    upstream: frozenset[int]
    proxy: frozenset[int]
    note: str


def plan_cores() -> CoreLayout:
    """Give the proxy under test its own core; driver and upstream share (or split) the rest."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return CoreLayout(frozenset(), frozenset(), frozenset(), "not pinned (no sched_setaffinity)")
    if len(cpus) < 2:
        return CoreLayout(frozenset(), frozenset(), frozenset(),
                          f"not pinned: only CPU {cpus} is available")
    proxy = frozenset(cpus[-1:])
    if len(cpus) == 2:
        shared = frozenset(cpus[:1])
        return CoreLayout(shared, shared, proxy,
                          f"load driver and upstream share CPU {cpus[0]}; the proxy under test "
                          f"has CPU {cpus[-1]} to itself")
    driver, upstream = frozenset(cpus[:1]), frozenset(cpus[1:-1])
    return CoreLayout(driver, upstream, proxy,
                      f"load driver on CPU {cpus[0]}, upstream on CPU {sorted(upstream)}, the proxy "
                      f"under test on CPU {cpus[-1]}")


def pin(pid: int, cpus: frozenset[int]) -> None:
    """Pin ``pid`` (0: this process) to ``cpus``; a no-op when the set is empty."""
    if cpus:
        os.sched_setaffinity(pid, cpus)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- /proc readers --------------------------------------------------------------------------------


def descendants(pid: int) -> list[int]:
    """``pid`` and every live process below it (breadth first)."""
    found, queue = [], [pid]
    while queue and len(found) < 1000:
        current = queue.pop(0)
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    queue.extend(int(child) for child in handle.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its live descendants, from ``/proc/<pid>/stat``, in seconds.

    The kernel reports them in clock ticks (1/100 s here), so a measurement needs a few hundred
    milliseconds of CPU to be read to a few per cent; ``run.py`` sizes request counts for that.
    """
    total = 0
    for process in descendants(pid):
        try:
            with open(f"/proc/{process}/stat") as handle:
                stat = handle.read()
        except (FileNotFoundError, ProcessLookupError):
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # the command name may hold spaces
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / CLOCK_TICKS


def rss_kib(pid: int) -> int:
    """Resident set size of ``pid`` and its live descendants, from ``VmRSS`` in ``/proc/<pid>/status``."""
    total = 0
    for process in descendants(pid):
        try:
            with open(f"/proc/{process}/status") as handle:
                for line in handle:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
                        break
        except (FileNotFoundError, ProcessLookupError):
            continue
    return total


def system_busy_seconds() -> float:
    """CPU time every process on the machine has used (all CPUs, from ``/proc/stat``), in seconds.

    Minus what the bench's own processes used, this is the background load of a shared machine.
    """
    with open("/proc/stat") as handle:
        fields = handle.readline().split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(f) for f in fields[:8])
    return (user + nice + system + irq + softirq + steal) / CLOCK_TICKS


# -- starting and stopping --------------------------------------------------------------------------


def _die_with_parent() -> None:  # runs in the child between fork and exec
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass  # not glibc Linux: ProcessSet still stops the child on every normal exit path


@dataclass
class Proc:
    """One started process: its name, Popen handle, port and log file."""

    name: str
    popen: subprocess.Popen
    port: int
    log: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 12) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def rss_kib(self) -> int:
        return rss_kib(self.pid)


class ProcessSet:
    """Starts processes and guarantees they are stopped when the ``with`` block ends, however."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.procs: list[Proc] = []
        self.started: list[dict[str, object]] = []  # every process ever started: name and pid

    def __enter__(self) -> "ProcessSet":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_all()

    def start(self, name: str, argv: Sequence[str], port: int, cpus: frozenset[int],
              env: dict[str, str] | None = None, cwd: str | None = None) -> Proc:
        """Start ``argv`` in its own session, pinned to ``cpus``, output to ``<log_dir>/<name>.log``."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        with open(log, "wb") as handle:
            popen = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT,
                start_new_session=True, env={**os.environ, **(env or {})}, cwd=cwd,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        proc = Proc(name, popen, port, log)
        self.procs.append(proc)
        self.started.append({"name": name, "pid": popen.pid})
        try:
            pin(popen.pid, cpus)
        except (ProcessLookupError, OSError):
            pass  # it already exited; wait_ready reports why
        return proc

    def wait_ready(self, proc: Proc, timeout: float) -> None:
        """Wait until ``proc`` accepts TCP connections on its port. Raises ``StartError``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not proc.alive():
                raise StartError(f"{proc.name} exited with code {proc.popen.returncode}:\n"
                                 f"{proc.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", proc.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.05)
        raise StartError(f"{proc.name} did not listen on port {proc.port} within {timeout:.0f} s:\n"
                         f"{proc.log_tail()}")

    def stop(self, proc: Proc) -> None:
        """SIGTERM the process group, wait, then SIGKILL what is left of it; idempotent."""
        if proc in self.procs:
            self.procs.remove(proc)
        members = descendants(proc.pid) if proc.alive() else []
        _signal_group(proc.popen, signal.SIGTERM)
        try:
            proc.popen.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            _signal_group(proc.popen, signal.SIGKILL)
            try:
                proc.popen.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pass  # unkillable (D state); nothing more a user-space process can do
        # workers that outlived their leader: only the ones seen before, still in its group
        for member in members[1:]:
            if _process_group(member) == proc.pid:
                try:
                    os.kill(member, signal.SIGKILL)
                except ProcessLookupError:
                    pass

    def stop_many(self, procs: Sequence[Proc]) -> None:
        """Stop several processes; SIGTERM goes to all first so that they shut down together."""
        for proc in procs:
            _signal_group(proc.popen, signal.SIGTERM)
        for proc in procs:
            self.stop(proc)

    def stop_all(self) -> None:
        self.stop_many(list(reversed(self.procs)))


def _signal_group(popen: subprocess.Popen, signum: int) -> None:
    if popen.returncode is not None:
        return  # reaped: its pid (and so the group id) may belong to someone else by now
    try:
        os.killpg(popen.pid, signum)  # the child leads its own session, so pgid == pid
    except (ProcessLookupError, PermissionError):
        pass


def _process_group(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            stat = handle.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(stat[stat.rindex(")") + 2:].split()[2])  # pgrp, field 5 of stat
