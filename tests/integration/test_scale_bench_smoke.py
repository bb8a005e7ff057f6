"""`make bench BENCH_SCALE=N` must not rot: bench/scale.py for real with 3 containers (not a
timed test): every section is reported, every check passes, and nothing is left behind."""

import json
import os
import re
import subprocess
import sys

from tests.conftest import REPO
from tests.helpers import cgroups


def test_scale_bench_runs_reports_and_leaves_nothing(tmp_path):
    out = tmp_path / "scale-3.md"
    before = set(os.listdir("/run"))
    r = subprocess.run([sys.executable, f"{REPO}/bench/scale.py", "--count", "3", "--quick", "--out", str(out)],
                       capture_output=True, text=True, timeout=300, cwd=REPO)  # fmt: skip
    # the exit status says "no error"; the inspect goal may be missed on a loaded machine
    assert r.returncode == 0, r.stdout + r.stderr
    for head in ("## start", "## reachability", "## commands at 3 running containers", "## memory and kernel",
                 "## rm -f of all", "## goals"):
        assert head in r.stdout, head
    assert "the last container pings 2 others: 2/2 ok" in r.stdout
    assert "the host GETs / from 2 published ports: 2/2 ok" in r.stdout
    for cmd in ("minirt ps ", "minirt ps -a --format json ", "minirt inspect s1 ", "minirt stats --no-stream "):
        assert re.search(rf"^\| {re.escape(cmd)}\s*\|\s+\d+\.\d \|", r.stdout, re.M), cmd
    assert "goal: no error: met (none)" in r.stdout
    assert re.search(r"^- idle, over 1 s after the last start: \d+ minirt processes woke ", r.stdout, re.M)
    assert re.search(r"in the holder at N: conntrack entries \S+, nft set/map elements \d+, veths 3, mounts \d+$", r.stdout, re.M)
    assert re.search(r"after rm -f of all: conntrack \S+, nft elements \d+, veths 0, mounts \d+, records 0$", r.stdout, re.M)
    data = json.loads((tmp_path / "scale-3.json").read_text())
    assert data["started"] == 3 and len(data["start_ms"]) == 3 and not data["errors"]
    assert data["memory"]["processes"] >= 3  # at least one minirt process per container
    # ps --format json gave one object per container
    assert data["commands"]["ps -a --format json"]["lines"] == 3
    # nothing left: its cgroup parent in no hierarchy, its temp root gone from /run, no process
    parent = re.search(r"cgroup parent (minirt-bench-\d+) ", r.stdout).group(1)
    assert not [d for d in cgroups.dirs(parent).values() if os.path.exists(d)]
    assert not [d for d in set(os.listdir("/run")) - before if d.startswith("minirt-scale-")]
    ps = subprocess.run(["pgrep", "-f", "minirt-scale-"], capture_output=True, text=True)
    assert ps.stdout.strip() == "", ps.stdout
