"""Every container's own cgroup, its limits, OOM, and that nothing is left: against the kernel.

The cgroup files are read from the host through the kernel's own mounts (tests/helpers/
cgroups.py), never through minirt's records; each test's containers nest under the test's own
cgroup parent (conftest Runner.cgroup_parent), which the fixture checks empty afterwards.
"""

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from tests.helpers import cgroups
from tests.integration.test_lifecycle import inspect, ok, wait_for

HOG = ["awk", "BEGIN { s = \"x\"; while (1) s = s s }"]  # doubles a string until the OOM killer comes


def read(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def cid_of(minirt, ref: str) -> str:
    return inspect(minirt, ref)["Id"]


def test_every_container_has_its_own_cgroup_which_goes_with_it(minirt):
    cid = ok(minirt("run", "-d", "--name", "plain", "--", "sleep", "60")).strip()
    pid = inspect(minirt, cid)["State"]["Pid"]
    dirs = minirt.cgroup_dirs(cid)
    assert "memory" in dirs and "pids" in dirs
    for key, d in dirs.items():
        assert os.path.isdir(d), f"{key}: {d}"
        assert str(pid) in read(f"{d}/cgroup.procs").split(), key
    # the init is in it from the host's point of view (/proc/PID/cgroup names the same path)
    mine = {line.split(":")[1]: line.split(":", 2)[2] for line in read(f"/proc/{pid}/cgroup").splitlines()}
    assert mine["memory"].endswith(f"/{minirt.cgroup_parent}/{cid}")
    # exec'd processes join it too, in every hierarchy the init is in (the unified one of a
    # hybrid host by clone3 CLONE_INTO_CGROUP, the v1 ones through `tasks`: execin.py)
    out = ok(minirt("exec", "plain", "cat", "/proc/self/cgroup"))
    init_lines = [line for line in read(f"/proc/{pid}/cgroup").splitlines() if line.endswith(f"/{cid}")]
    assert len(init_lines) >= 8 and sorted(line for line in out.splitlines() if line.endswith(f"/{cid}")) == sorted(
        init_lines
    ), out
    ok(minirt("rm", "-f", "plain"))
    assert not any(os.path.isdir(d) for d in dirs.values())


def test_limits_are_written_where_docker_writes_them_and_seen_inside(minirt):
    cid = ok(minirt("run", "-d", "--memory", "64m", "--memory-swap", "128m", "--memory-reservation", "32m",
                    "--cpus", "1.5", "--cpu-shares", "512", "--cpuset-cpus", "0", "--pids-limit", "100",
                    "--oom-score-adj", "500", "--", "sleep", "60")).strip()  # fmt: skip
    d = minirt.cgroup_dirs(cid)
    assert read(f"{d['memory']}/memory.limit_in_bytes") == str(64 << 20)
    assert read(f"{d['memory']}/memory.memsw.limit_in_bytes") == str(128 << 20)
    assert read(f"{d['memory']}/memory.soft_limit_in_bytes") == str(32 << 20)
    assert read(f"{d['cpu']}/cpu.cfs_period_us") == "100000"
    assert read(f"{d['cpu']}/cpu.cfs_quota_us") == "150000"
    assert read(f"{d['cpu']}/cpu.shares") == "512"
    assert read(f"{d['cpuset']}/cpuset.cpus") == "0"
    assert read(f"{d['pids']}/pids.max") == "100"
    pid = inspect(minirt, cid)["State"]["Pid"]
    assert read(f"/proc/{pid}/oom_score_adj") == "500"
    # inside: /sys/fs/cgroup shows the container's own cgroup as each hierarchy's root, read-only
    inside = ok(minirt("exec", cid, "sh", "-c", "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                       "/sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us; "
                       "echo 1 > /sys/fs/cgroup/pids/pids.max || echo refused"))  # fmt: skip
    assert inside.split() == [str(64 << 20), "100", "150000", "refused"], inside
    host = inspect(minirt, cid)["HostConfig"]
    assert host["Memory"] == 64 << 20 and host["NanoCpus"] == 1_500_000_000 and host["PidsLimit"] == 100
    # the configured parent applies, and CgroupParent shows only a --cgroup-parent given (Docker: "")
    assert host["CgroupParent"] == "" and host["MemorySwap"] == 128 << 20
    ok(minirt("rm", "-f", cid))


def test_memory_hog_is_oom_killed_137_and_inspect_says_so(minirt):
    r = minirt("run", "--name", "hog", "--memory", "32m", "--", *HOG, timeout=120)
    assert r.returncode == 137, r.stderr
    doc = inspect(minirt, "hog")
    assert doc["State"]["OOMKilled"] is True and doc["State"]["ExitCode"] == 137
    assert "OOM killed" in ok(minirt("ps", "-a"))
    # a container SIGKILLed by hand exits 137 too, but was not OOM-killed: no guess from the code
    ok(minirt("run", "-d", "--name", "killed", "--memory", "32m", "--", "sleep", "60"))
    ok(minirt("kill", "killed"))
    wait_for(lambda: inspect(minirt, "killed")["State"]["Status"] == "exited", what="exit")
    doc = inspect(minirt, "killed")
    assert doc["State"]["ExitCode"] == 137 and doc["State"]["OOMKilled"] is False
    ok(minirt("rm", "hog", "killed"))


def test_pids_limit_stops_a_fork_loop_and_the_host_is_unaffected(minirt):
    # busybox sh gives up at the first failed fork ("can't fork"), exit 2
    script = "n=0; while [ $n -lt 40 ]; do sleep 30 & n=$((n+1)); done; echo forked all"
    r = minirt("run", "--rm", "--pids-limit", "20", "--", "sh", "-c", script, timeout=60)
    assert r.returncode == 2 and "can't fork" in r.stderr and "forked all" not in r.stdout, (r.stdout, r.stderr)
    r = minirt("run", "--rm", "--pids-limit", "50", "--", "sh", "-c", script, timeout=60)
    assert r.returncode == 0 and "forked all" in r.stdout, r.stderr  # the same loop under a higher limit
    assert subprocess.run(["true"]).returncode == 0  # the host still forks


def test_cpus_half_a_core_caps_a_busy_loop(minirt):
    cid = ok(minirt("run", "-d", "--cpus", "0.5", "--", "sh", "-c", "while :; do :; done")).strip()
    usage = f"{minirt.cgroup_dirs(cid)['cpuacct']}/cpuacct.usage"
    time.sleep(0.3)
    t0, u0 = time.monotonic(), int(read(usage))
    time.sleep(2)
    t1, u1 = time.monotonic(), int(read(usage))
    share = (u1 - u0) / ((t1 - t0) * 1e9)
    assert 0.2 < share <= 0.6, f"busy loop used {share:.2f} of a core under --cpus 0.5"
    ok(minirt("rm", "-f", cid))


def test_invalid_values_exit_125_with_one_line_and_create_nothing(minirt):
    for args, text in [
        (["--memory", "3x"], 'invalid argument "3x" for "-m, --memory" flag'),
        (["--memory", "4m"], "Minimum memory limit allowed is 6MB"),
        (["--memory", "64m", "--memory-swap", "32m"], "Minimum memoryswap limit should be larger than memory limit"),
        (["--cpuset-cpus", "0-63"], "Requested CPUs are not available"),
        (["--cpus", "64"], "Range of CPUs is from 0.01 to"),
        (["--oom-score-adj", "1001"], "range for oom score adj is [-1000, 1000]"),
        (["--cgroupns", "shared"], "invalid cgroup namespace mode"),
    ]:
        r = minirt("run", "--rm", *args, "--", "true")
        assert r.returncode == 125, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and text in r.stderr, (args, r.stderr)
    assert minirt.containers() == []
    assert cgroups.leftovers(minirt.cgroup_parent, timeout=0) == []


def test_stop_reaches_every_process_of_the_cgroup(minirt):
    # --init: the reaper passes SIGTERM to its child only; a setsid'd grandchild ignores it
    cid = ok(minirt("run", "-d", "--init", "--", "sh", "-c",
                    "setsid sh -c 'trap \"\" TERM; sleep 1000' & trap '' TERM; sleep 1000")).strip()  # fmt: skip
    d = minirt.cgroup_dirs(cid)
    # the reaper, and two sleeps (busy box's sh execs the last command of each shell)
    wait_for(lambda: len(read(f"{d['pids']}/cgroup.procs").split()) >= 3, what="the processes")
    ok(minirt("stop", "-t", "1", cid))
    assert inspect(minirt, cid)["State"]["Status"] == "exited"
    assert not any(os.path.isdir(x) for x in d.values())
    ok(minirt("rm", cid))


def test_private_cgroup_namespace_sees_its_own_cgroup_as_root(minirt):
    out = ok(minirt("run", "--rm", "--cgroupns", "private", "--", "cat", "/proc/self/cgroup"))
    assert {line.split(":", 2)[2] for line in out.splitlines()} == {"/"}, out
    out = ok(minirt("run", "--rm", "--", "cat", "/proc/self/cgroup"))  # v1 default: host
    assert minirt.cgroup_parent in out
    # exec joins the container's cgroup namespace too
    cid = ok(minirt("run", "-d", "--cgroupns", "private", "--", "sleep", "60")).strip()
    out = ok(minirt("exec", cid, "cat", "/proc/self/cgroup"))
    assert {line.split(":", 2)[2] for line in out.splitlines()} == {"/"}, out
    ok(minirt("rm", "-f", cid))


@pytest.mark.parametrize("point", ["after-record", "after-cgroup", "after-spawn", "after-network", "after-exec"])
def test_a_fault_at_each_point_leaves_no_cgroup(minirt, point):
    r = minirt("run", "--rm", "--memory", "64m", "--pids-limit", "50", "--", "true",
               env={"MINIRT_FAULT": f"fail:{point}"})  # fmt: skip
    assert r.returncode == 125, r.stderr
    assert cgroups.leftovers(minirt.cgroup_parent, timeout=2) == []
    assert minirt.containers() == []


def test_kill_9_of_minirt_then_gc_removes_the_cgroup(minirt):
    p = minirt.popen("run", "--memory", "64m", "--", "sleep", "60", env={"MINIRT_FAULT": "kill:after-exec"})
    p.wait(timeout=30)
    p.stdout.close(), p.stderr.close()
    (cid,) = minirt.containers()
    d = minirt.cgroup_dirs(cid)
    # the container died with its owner (pdeathsig); the sentinel or gc carries out the plan
    ok(minirt("gc"))
    wait_for(lambda: not any(os.path.isdir(x) for x in d.values()), what="the cgroup to go")
    assert json.load(open(f"{minirt.root}/containers/{cid}/state.json"))["status"] == "exited"
    ok(minirt("rm", cid))


def test_gc_removes_a_cgroup_no_container_owns(minirt):
    ok(minirt("run", "--rm", "--", "true"))  # makes the parent
    stray = "f" * 64
    dirs = minirt.cgroup_dirs(stray)
    for d in dirs.values():
        os.makedirs(d)
    out = ok(minirt("gc"))
    assert f"cgroup {dirs['memory']}" in out
    assert not any(os.path.isdir(d) for d in dirs.values())


def test_twenty_parallel_runs_with_limits_leave_nothing(minirt):
    results = []

    def one(i: int) -> None:
        results.append(minirt("run", "--rm", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "30", "--",
                              "sh", "-c", f"echo {i}", timeout=120))  # fmt: skip

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.returncode for r in results] == [0] * 20, [r.stderr for r in results if r.returncode]
    assert cgroups.leftovers(minirt.cgroup_parent) == []
    assert minirt.containers() == []


def test_explain_prints_each_cgroup_step_as_a_shell_line(minirt):
    r = minirt("run", "--rm", "--net", "none", "--memory", "64m", "--explain", "--", "true")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert any(line.startswith("+ mkdir ") and minirt.cgroup_parent in line for line in lines), r.stderr
    assert any(line.startswith("+ echo 67108864 > ") and line.endswith("/memory.limit_in_bytes") for line in lines)
    assert any(line.startswith("+ echo ") and line.endswith("/cgroup.procs") for line in lines)
    assert any(line.startswith("+ rmdir ") for line in lines), r.stderr


@pytest.mark.skipif(not cgroups.unified_with_limits(), reason=cgroups.summary())
def test_v2_limits_and_oom_on_a_unified_host(minirt):
    """Runs where the kernel offers a v2 hierarchy with the controllers (not on hybrid hosts:
    `make test` prints which ran)."""
    cid = ok(minirt("run", "-d", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "20", "--",
                    "sleep", "60")).strip()  # fmt: skip
    d = minirt.cgroup_dirs(cid)[""]
    assert read(f"{d}/memory.max") == str(64 << 20) and read(f"{d}/pids.max") == "20"
    assert read(f"{d}/cpu.max") == "50000 100000" and read(f"{d}/memory.swap.max") == str(64 << 20)
    ok(minirt("rm", "-f", cid))
    r = minirt("run", "--name", "hog", "--memory", "32m", "--", *HOG, timeout=120)
    assert r.returncode == 137 and inspect(minirt, "hog")["State"]["OOMKilled"] is True
    ok(minirt("rm", "hog"))


WARM_UP = r"""
import json, os, time
from minirt import cgroups  # the installed package: _syscalls is compiled there

def threads():
    return len(os.listdir("/proc/self/task"))

before = open("/proc/self/cgroup").read()
cgroups.warm_up_attach()
time.sleep(0.06)  # past the first write's grace period: a single write would be over by now
out = {"running": threads()}
other = [t for t in os.listdir("/proc/self/task") if t != str(os.getpid())]
with open(f"/proc/self/task/{other[0]}/status") as f:
    blocked = int(next(line.split()[1] for line in f if line.startswith("SigBlk:")), 16)
out["blocks_sigchld_and_term"] = bool(blocked & (1 << 16)) and bool(blocked & (1 << 14))
cgroups.warm_up_done()
time.sleep(0.02)
out["stopped"] = threads()
out["same_cgroups"] = open("/proc/self/cgroup").read() == before
print(json.dumps(out))
"""


def test_cgroup_warm_up_thread_repeats_until_done_and_moves_nothing(host_ns):
    """The warm-up (cgroups/__init__.py) keeps rewriting this process's own cgroup.procs until
    the real move is made: still running 60 ms on, gone after warm_up_done(), and the process
    is where it was in every hierarchy. The thread blocks every signal: a SIGCHLD taken by it
    would be lost to the main thread's sigtimedwait (an `exec` hung so)."""
    out = json.loads(host_ns.run(sys.executable, "-c", WARM_UP).stdout)
    assert out == {"running": 2, "blocks_sigchld_and_term": True, "stopped": 1, "same_cgroups": True}


HALF_PLACED = r"""
import json, os, secrets, subprocess, sys
from minirt import cgroups  # the installed package (its layout finder needs _syscalls)

cg = cgroups.for_container(secrets.token_hex(32), sys.argv[1])
cg.create()
sleeper = subprocess.Popen(["sleep", "60"])
try:
    with open(f"{cg.dirs['cpu']}/cgroup.procs", "w") as f:
        f.write(str(sleeper.pid))
    cg.remove()
    print(json.dumps({"version": cg.version, "killed": sleeper.wait(timeout=5), "left": cg.exists()}))
finally:
    sleeper.kill()
    sleeper.wait()
"""


def test_removal_kills_a_process_left_in_one_v1_hierarchy_only(minirt):
    """A process in one v1 directory of a container's cgroup but in neither its pids directory
    nor its unified twin (what a place() that failed part-way leaves) is not reached by
    cgroup.kill; remove() kills what that directory still holds and removes every directory."""
    r = subprocess.run([sys.executable, "-c", HALF_PLACED, minirt.cgroup_parent], capture_output=True, text=True, cwd="/")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"version": 1, "killed": -9, "left": False}


def test_a_run_under_a_cpuset_parent_left_empty_is_not_refused(minirt):
    """The test's cgroup parent exists in the cpuset hierarchy with empty cpus and mems, as a
    run killed between its mkdir and its writes leaves it (or a concurrent run still busy
    between them): the container's run fills it and starts, instead of its init being refused
    by cpuset (ENOSPC) after joining the hierarchies before it."""
    parent = os.path.dirname(minirt.cgroup_dirs("0" * 64)["cpuset"])
    os.makedirs(parent)
    with open(f"{os.path.dirname(parent)}/cgroup.clone_children") as f:
        assert f.read().strip() == "0"  # so the kernel leaves a new cpuset cgroup empty
    assert read(f"{parent}/cpuset.cpus").strip() == "" and read(f"{parent}/cpuset.mems").strip() == ""
    ok(minirt("run", "--rm", "--", "true"))
    assert read(f"{parent}/cpuset.cpus").strip() != ""
