"""What minirt's processes cost while containers idle: count, PSS, wakeups (issue 15).

Used by tests/integration/test_footprint.py and tools/supervisor-footprint. Processes are
minirt's launcher (.venv/bin/minirt: its cmdline names it) started with this MINIRT_ROOT
(tests/helpers/kernel.py tells them apart by environment), so the containers' own processes
(sleep) and other roots' runs are not counted.
"""

import time

from tests.helpers import kernel


def minirt_pids(root: str) -> list[int]:
    return sorted(int(p.split()[0]) for p in kernel.minirt_processes(set(), root=root))


def _kib(path: str, key: str) -> int:
    """The kB value of line `key` in a /proc file, 0 if it has none."""
    with open(path) as f:
        for line in f:
            if line.startswith(key):
                return int(line.split()[1])
    return 0


def pss_kib(pid: int) -> int:
    """Proportional set size: each page's size divided by the number of processes mapping it,
    so the sum over processes is the memory they really cost together (smaps_rollup, 4.14+)."""
    return _kib(f"/proc/{pid}/smaps_rollup", "Pss:")


def rss_kib(pid: int) -> int:
    return _kib(f"/proc/{pid}/status", "VmRSS:")


def switches(pid: int) -> int:
    """Voluntary + involuntary context switches: each wakeup of a sleeping process is one."""
    total = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("voluntary_ctxt_switches:", "nonvoluntary_ctxt_switches:")):
                total += int(line.split()[1])
    return total


def wakeups(pids: list[int], seconds: float) -> dict[int, int]:
    """Context switches of each process over `seconds` of idleness (0 = blocked throughout)."""
    before = {p: switches(p) for p in pids}
    time.sleep(seconds)
    return {p: switches(p) - before[p] for p in pids}


def measure(root: str, containers: int, idle: float) -> dict:
    pids = minirt_pids(root)
    pss = {p: pss_kib(p) for p in pids}
    woke = wakeups(pids, idle) if idle else {}
    return {
        "containers": containers,
        "processes": len(pids),
        "processes_per_container": len(pids) / containers,
        "pss_kib_total": sum(pss.values()),
        "pss_kib_per_container": sum(pss.values()) / containers,
        "rss_kib_per_process": sum(rss_kib(p) for p in pids) / max(len(pids), 1),
        "idle_seconds": idle,
        "wakeups": sum(woke.values()),
        "busy": {p: n for p, n in woke.items() if n},
    }
