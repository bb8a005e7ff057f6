"""`make bench` must not rot: run the harness for real with a tiny run count (not a timed test)."""

import os
import re
import subprocess
import sys

from tests.conftest import REPO
from tests.helpers import cgroups


def test_bench_runs_and_reports():
    r = subprocess.run(
        [sys.executable, f"{REPO}/bench/bench.py", "--quick", "--runs", "1"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "goal:" in r.stdout
    assert "| minirt run --rm --net none -- /bin/true " in r.stdout
    # the plain --net none row and the one with limits, interleaved, and their ratio
    assert "| minirt run --rm --net none --memory 64m --cpus 1 --pids-limit 100 -- /bin/true " in r.stdout
    assert "÷ plain --net none medians ≤ 1.10: " in r.stdout
    # issue 16: a loaded 3-layer image beside the same root as --rootfs DIR, and their ratio
    assert "| minirt run --rm --net none IMAGE /bin/true (3 layers, loaded) " in r.stdout
    assert "run IMAGE (the rootfs + 2 layers) ÷ run --rootfs DIR medians ≤ 1.10: " in r.stdout
    # minirt-only: the OCI peers are listed as skipped, not run (no runc/crun/matplotlib needed)
    assert "skipped: --quick (minirt-only smoke run)" in r.stdout
    assert "skipped: set BENCH_PEERS=docker,podman" in r.stdout
    assert "## sequential batches" in r.stdout and "compileall -q" in r.stdout
    # stats --no-stream with 2 containers: measured, or skipped with its one-line reason
    stats = r.stdout.split("## minirt stats --no-stream with 2 running containers", 1)
    assert len(stats) == 2, r.stdout
    assert re.search(r"^(minirt stats --no-stream: median |skipped: )", stats[1], re.M), stats[1]
    # the bench's own cgroup parent is gone from every hierarchy, and nothing was left in it
    assert "error:" not in r.stdout
    parent = re.search(r"relative cgroup parent (minirt-bench-\d+) ", r.stdout).group(1)
    assert not [d for d in cgroups.dirs(parent).values() if os.path.exists(d)]
