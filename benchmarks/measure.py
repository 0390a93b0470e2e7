"""Run a command as a child process: its wall time and peak memory.

Two memory figures: `peak_process_gib`, the largest resident set of any single process of the
child's tree (ru_maxrss from wait4: the child and every descendant it waited for, such as dbt
or Chromium), and `peak_tree_gib`, the largest sum of resident sets over the whole tree at any
moment, sampled from /proc every 0.2 s (what the machine must hold at once)."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass
class Measured:
    returncode: int
    wall_seconds: float
    peak_process_gib: float
    peak_tree_gib: float
    mean_load: float  # the machine's 1-minute load average, averaged over the run (2 cores: above 2, work waited)


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(d))
    return kids


def tree_rss_bytes(pid: int) -> int:
    kids = _children()
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * _PAGE
        except (OSError, IndexError, ValueError):
            pass
        todo += kids.get(p, [])
    return total


def run(cmd: list[str], log: Path, env: dict | None = None, cwd: Path | None = None) -> Measured:
    with open(log, "w") as fh:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        peak = 0
        loads: list[float] = []
        done = threading.Event()

        def sample():
            nonlocal peak
            n = 0
            while not done.is_set():
                peak = max(peak, tree_rss_bytes(proc.pid))
                if n % 25 == 0:
                    loads.append(os.getloadavg()[0])
                n += 1
                done.wait(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
    return Measured(proc.returncode, wall, usage.ru_maxrss / 2**20, peak / 2**30,
                    sum(loads) / len(loads) if loads else os.getloadavg()[0])
