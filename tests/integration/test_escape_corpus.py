"""The escape corpus (issue 12): each row of tests/probes/corpus.py must fail in a default
container with the answer Docker 20.10 gives (`make compare` runs the same rows on Docker), and
pass its defence under the options that lift it (--privileged, a --cap-add, or
seccomp=unconfined where only the filter is in the way). The probe is build/probes/probe
(tests/probes/probe.c); every probe is harmless if it ever succeeds."""

import os

import pytest

from tests.conftest import REPO
from tests.probes.corpus import CORPUS, SECCOMP_RULES, probe_args

PROBE = f"{REPO}/build/probes/probe"


def run_probe(minirt, args: list[str], opts: tuple = ()) -> str:
    assert os.access(PROBE, os.X_OK), f"{PROBE} missing: `make probes` builds it (make test does)"
    r = minirt("run", "--rm", "--net", "none", "-v", f"{PROBE}:/probe:ro", *opts, "--", "/probe", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.mark.parametrize("row", CORPUS + SECCOMP_RULES, ids=lambda row: row.name)
def test_blocked_by_default_and_passes_when_lifted(minirt, row):
    got = run_probe(minirt, probe_args(row, False, os.getpid()))
    assert got in row.blocked, f"default: {got} ({row.why})"
    got = run_probe(minirt, probe_args(row, True, os.getpid()), row.opts)
    assert got in row.passed, f"{' '.join(row.opts)}: {got}"


def test_no_host_process_is_visible(minirt):
    """What the ptrace row relies on: /proc lists only the container's own processes (the
    trailing `true` keeps busybox sh from exec-ing its last command: PID 1 stays sh)."""
    r = minirt("run", "--rm", "--net", "none", "--", "sh", "-c", "ls /proc; echo ==; cat /proc/1/cmdline; true")
    assert r.returncode == 0, r.stderr
    listing, cmdline = r.stdout.split("==\n")
    pids = {int(x) for x in listing.split() if x.isdigit()}
    assert str(os.getpid()) not in listing.split() and 1 in pids
    assert max(pids) < 100, pids  # a fresh pid namespace: a handful of small pids
    assert cmdline.split("\0")[0] == "sh"
