#!/usr/bin/env python3
"""Back-to-back start-up latency of two minirt installs: is a change a regression?

    bench/ab.py [--runs N] A_MINIRT B_MINIRT

Each install runs in a throwaway network + mount namespace of its own (so each has its own
`minirt0`, `inet minirt` table and ip_forward, and neither sees the other's), with its own
MINIRT_ROOT. The cases are `--net none`, the bridge and `-p`, all `run --rm -- /bin/true`;
rounds interleave A and B and rotate the case order, so the machine's noise hits both alike.
Prints one Markdown row per case: the medians, min/max, and B/A. Every container's cgroup goes
under the relative cgroup parent minirt-bench-<pid> (nested in this process's own cgroups; the
same $MINIRT_CONFIG for both sides), removed at the end; a cgroup left in it is printed as an
error line and the exit status is 1. Needs root. Build the other
install with e.g. `git worktree add /tmp/base <rev> && make -C /tmp/base deps`.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import sys
import time

# bench.py's cgroup-parent helpers (this directory is sys.path[0] when run as a script)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import remove_cgroup_parent  # noqa: E402

CGROUP_PARENT = f"minirt-bench-{os.getpid()}"
CASES = [
    ("run --rm --net none -- /bin/true", ["run", "--rm", "--net", "none", "--", "/bin/true"]),
    ("run --rm --net bridge -- /bin/true", ["run", "--rm", "--net", "bridge", "--", "/bin/true"]),
    ("run --rm -p 18080:80 -- /bin/true", ["run", "--rm", "-p", "18080:80", "--", "/bin/true"]),
]


class Side:
    def __init__(self, minirt: str, rootfs: str) -> None:
        self.minirt = minirt
        self.root = tempfile.mkdtemp(prefix="minirt-ab-")
        self.holder = subprocess.Popen(["unshare", "--net", "--mount", "--propagation", "private", "--",
                                        "sleep", "3600"], stdin=subprocess.DEVNULL)  # fmt: skip
        own = os.readlink("/proc/self/ns/net")
        while os.readlink(f"/proc/{self.holder.pid}/ns/net") == own:
            time.sleep(0.005)
        self.prefix = ["nsenter", "-t", str(self.holder.pid), "-n", "-m", "--"]
        subprocess.run([*self.prefix, "ip", "link", "set", "lo", "up"], check=True)
        # its own sysfs, with the host's cgroup mounts kept on top (every container gets a cgroup)
        hold = os.path.join(self.root, "cgroup-hold")
        os.mkdir(hold)
        subprocess.run([*self.prefix, "mount", "-n", "--rbind", "/sys/fs/cgroup", hold], check=True)
        subprocess.run([*self.prefix, "mount", "-n", "-t", "sysfs", "sysfs", "/sys"], check=True)
        subprocess.run([*self.prefix, "mount", "-n", "--move", hold, "/sys/fs/cgroup"], check=True)
        # nothing of the machine's config, only the bench's cgroup parent (relative: nested)
        config = os.path.join(self.root, "config.json")
        with open(config, "w") as f:
            json.dump({"cgroup_parent": CGROUP_PARENT}, f)
        self.env = {**os.environ, "MINIRT_ROOT": self.root, "MINIRT_ROOTFS": rootfs, "MINIRT_CONFIG": config}

    def time(self, args: list[str]) -> float:
        t = time.perf_counter()
        r = subprocess.run(
            [*self.prefix, self.minirt, *args], env=self.env, capture_output=True, stdin=subprocess.DEVNULL
        )
        ms = (time.perf_counter() - t) * 1000
        if r.returncode != 0:
            raise SystemExit(f"{self.minirt} {' '.join(args)}: exit {r.returncode}: {r.stderr.decode().strip()}")
        return ms

    def close(self) -> None:
        self.holder.kill()
        self.holder.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--rootfs", default=os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                     "build", "rootfs"))  # fmt: skip
    ap.add_argument("a")
    ap.add_argument("b")
    opts = ap.parse_args()
    sides: list[Side] = []
    errors: list[str] = []
    try:
        for minirt in (opts.a, opts.b):  # one at a time, so a failed B still closes A
            sides.append(Side(minirt, opts.rootfs))
        times = {(c, s): [] for c, _ in CASES for s in (0, 1)}
        for rnd in range(opts.runs + 3):  # 3 warm-up rounds (bridge creation, bytecode)
            order = CASES[rnd % len(CASES) :] + CASES[: rnd % len(CASES)]
            for name, args in order:
                for s in (0, 1) if rnd % 2 else (1, 0):
                    ms = sides[s].time(args)
                    if rnd >= 3:
                        times[(name, s)].append(ms)
        print(f"A = {opts.a}\nB = {opts.b}\n{opts.runs} interleaved runs each\n")
        print("| case | A median ms (min–max) | B median ms (min–max) | B/A |")
        print("|---|--:|--:|--:|")
        for name, _ in CASES:
            a, b = times[(name, 0)], times[(name, 1)]
            ma, mb = statistics.median(a), statistics.median(b)
            print(
                f"| {name} | {ma:.1f} ({min(a):.1f}–{max(a):.1f}) "
                f"| {mb:.1f} ({min(b):.1f}–{max(b):.1f}) | {mb / ma:.3f} |"
            )
    finally:
        for s in sides:
            s.close()
        errors = remove_cgroup_parent(CGROUP_PARENT)  # last: every container is gone by now
        for line in errors:
            print(line)
    if errors:
        sys.exit(1)


if __name__ == "__main__":
    main()
