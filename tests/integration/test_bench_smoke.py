"""`make bench` must not rot: run the harness for real with a tiny run count (not a timed test)."""

import subprocess
import sys

from tests.conftest import REPO


def test_bench_runs_and_reports():
    r = subprocess.run(
        [sys.executable, f"{REPO}/bench/bench.py", "--quick", "--runs", "1"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    assert "goal:" in r.stdout
    assert "| minirt run --rm --net none -- /bin/true " in r.stdout
    # minirt-only: the OCI peers are listed as skipped, not run (no runc/crun/matplotlib needed)
    assert "skipped: --quick (minirt-only smoke run)" in r.stdout
    assert "skipped: set BENCH_PEERS=docker,podman" in r.stdout
    assert "## sequential batches" in r.stdout and "compileall -q" in r.stdout
