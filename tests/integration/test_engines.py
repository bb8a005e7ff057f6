"""podman and containerd drive minirt-oci, and podman drives minirt-cni: Debian's engines,
unmodified, in the test's throwaway host (tests/helpers/engines.py says what is whose).

What each engine asked of the runtime is read back from the logging wrapper, so these tests
also pin the contract docs/oci.md describes (verbs, global flags, JSON logs).
"""

import json
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, ROOTFS
from tests.helpers import cgroups
from tests.helpers.engines import IMAGE, Containerd, Podman, calls, private_state_dirs, reap_namespace, verbs
from tests.integration.test_nat_wan import WAN_HOST, fake_wan

MINIRT_OCI = os.environ.get("MINIRT_OCI_BIN") or f"{REPO}/.venv/bin/minirt-oci"
MINIRT_CNI = os.environ.get("MINIRT_CNI_BIN") or f"{REPO}/.venv/bin/minirt-cni"
LOOP = "echo started; trap 'echo got-term; exit 0' TERM; while :; do sleep 0.1; done"


@pytest.fixture
def engine_host(minirt):
    """The test's throwaway host with private /run and /var/lib; afterwards nothing may still
    run in it."""
    private_state_dirs(minirt.host)
    yield minirt
    left = reap_namespace(minirt.host)
    assert not left, f"processes outlived the engines' cleanup: {left}"


def engine_cgroups_left(engine) -> list[str]:
    """Container cgroups the engine's cleanup left under its parent (then all removed). The
    one podman keeps is `conmon`, where it puts every conmon and never removes."""
    try:
        return [c for c in engine.cgroups.children() if c != "conmon"]
    finally:
        engine.cgroups.close()


@pytest.fixture
def podman(engine_host, workdir):
    os.makedirs(f"{workdir}/cni-bin")
    os.symlink(MINIRT_CNI, f"{workdir}/cni-bin/minirt-cni")
    p = Podman(engine_host.host, workdir, MINIRT_OCI, engine_host.cgroup_parent, plugin_dir=f"{workdir}/cni-bin")
    try:
        p.import_image(ROOTFS)
        yield p
        p.close()
    finally:
        left = engine_cgroups_left(p)
    assert not left, f"podman's containers left cgroups: {left}"


@pytest.fixture
def workdir():
    """A short directory of the test's own: conmon's attach socket (<bundle>/attach, 60+
    characters below the storage root) and containerd's socket must fit in sun_path's 108
    bytes; under pytest's tmp_path an attached `podman run` waits 20 s for an exit that
    conmon never reports."""
    import tempfile

    d = tempfile.mkdtemp(prefix="mrt-eng-")
    yield d
    subprocess.run(["rm", "-rf", "--one-file-system", d], check=False)


@pytest.fixture
def containerd(engine_host, workdir):
    c = Containerd(engine_host.host, workdir, MINIRT_OCI, engine_host.cgroup_parent)
    try:
        c.import_image(ROOTFS)
        yield c
    finally:
        c.close()
        left = engine_cgroups_left(c)
    assert not left, f"containerd's containers left cgroups: {left}"


def script(argv: list[str], typed: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run argv on a pty (util-linux script), `typed` as its keyboard; -e: its exit status."""
    return subprocess.run(["script", "-eqc", " ".join(map(quote, argv)), "/dev/null"], input=typed, env=env,
                          capture_output=True, text=True, timeout=60)  # fmt: skip


def quote(s: str) -> str:
    import shlex

    return shlex.quote(s)


# --- podman --------------------------------------------------------------------------------------

def test_podman_run_rm_exit_codes(podman):
    assert podman(*podman.run_args("--rm", "--network", "none", IMAGE, "true")).returncode == 0
    assert podman(*podman.run_args("--rm", "--network", "none", IMAGE, "sh", "-c", "exit 3")).returncode == 3
    r = podman(*podman.run_args("--rm", "--network", "none", IMAGE, "/no/such/program"))
    assert r.returncode == 127, r.stderr
    assert "no such file or directory" in r.stderr
    r = podman(*podman.run_args("--rm", "--network", "none", IMAGE, "/etc"))
    assert r.returncode == 126, r.stderr
    assert podman.ok("ps", "-a", "-q") == ""
    logged = calls(podman.workdir)
    assert set(verbs(logged)) == {"create", "start", "delete"}
    # runtime_supports_json: podman hands minirt-oci a JSON log, as it does runc and crun
    assert all("--log-format=json" in argv for argv in logged if "create" in argv)
    assert all("--pid-file" in argv for argv in logged if "create" in argv)


def test_podman_detached_exec_logs_pause_stop_rm(podman):
    cid = podman.ok(*podman.run_args("-d", "--name", "t1", "--network", "none", IMAGE, "sh", "-c", LOOP)).strip()
    r = podman("exec", "t1", "sh", "-c", "echo in-exec $(hostname); exit 4")
    assert r.returncode == 4 and r.stdout == f"in-exec {cid[:12]}\n", r
    assert podman.ok("inspect", "t1", "--format", "{{.State.Status}}").strip() == "running"
    podman.ok("pause", "t1")
    assert podman.ok("inspect", "t1", "--format", "{{.State.Status}}").strip() == "paused"
    freezer = podman.cgroups.dirs(f"libpod-{cid}")["freezer"]
    with open(f"{freezer}/freezer.state") as f:
        assert f.read().strip() == "FROZEN"
    podman.ok("unpause", "t1")
    podman.ok("stop", "-t", "10", "t1")
    assert podman.ok("logs", "t1") == "started\ngot-term\n"
    assert podman.ok("inspect", "t1", "--format", "{{.State.ExitCode}} {{.State.Status}}").strip() == "0 exited"
    podman.ok("rm", "t1")
    # killed by a signal: 128+N, as Docker
    podman.ok(*podman.run_args("-d", "--name", "t2", "--network", "none", IMAGE, "sleep", "30"))
    podman.ok("kill", "-s", "KILL", "t2")
    assert podman.ok("wait", "t2").strip() == "137"
    podman.ok("rm", "t2")
    assert podman.ok("ps", "-a", "-q") == ""
    used = verbs(calls(podman.workdir))
    for verb in ("create", "start", "exec", "pause", "resume", "kill", "delete"):
        assert verb in used, used
    exec_call = next(argv for argv in calls(podman.workdir) if "exec" in argv)
    assert "--process" in exec_call and "--detach" in exec_call, exec_call


def test_podman_run_it_through_a_pty(podman):
    r = script(podman.argv(*podman.run_args("-it", "--rm", "--network", "none", IMAGE, "sh")),
               "tty; echo typed-$((6*7)); exit 5\n", env=podman.env)  # fmt: skip
    assert r.returncode == 5, r
    assert "/dev/pts/0" in r.stdout and "typed-42" in r.stdout, r.stdout
    create = next(argv for argv in calls(podman.workdir) if "create" in argv)
    assert "--console-socket" in create, create


def test_podman_memory_limit_is_the_containers_cgroup(podman):
    cid = podman.ok(*podman.run_args("-d", "--memory", "64m", "--network", "none", IMAGE, "sleep", "30")).strip()
    d = podman.cgroups.dirs(f"libpod-{cid}")
    with open(f"{d['memory']}/memory.limit_in_bytes") as f:
        assert int(f.read()) == 64 << 20
    pid = int(podman.ok("inspect", cid, "--format", "{{.State.Pid}}"))
    with open(f"{d['memory']}/cgroup.procs") as f:
        assert pid in map(int, f.read().split())
    r = podman("exec", cid, "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes")
    assert r.stdout.strip() == str(64 << 20), r
    podman.ok("rm", "-f", "-t", "0", cid)
    assert not os.path.isdir(d["memory"])


def test_podman_with_a_minirt_cni_network_publishes_a_port(podman, engine_host, workdir):
    conflist = {"cniVersion": "1.0.0", "name": "cnitest", "plugins": [{
        "type": "minirt-cni", "subnet": "10.89.7.0/24", "dataDir": engine_host.root,
        "capabilities": {"portMappings": True}}]}  # fmt: skip
    with open(f"{workdir}/cni/cnitest.conflist", "w") as f:
        json.dump(conflist, f)
    assert "cnitest" in podman.ok("network", "ls", "--format", "{{.Name}}").split()
    with fake_wan(engine_host) as wan:
        cid = podman.ok(*podman.run_args("-d", "--network", "cnitest", "-p", "8080:80", IMAGE, "sh", "-c",
                                         "mkdir /www && echo hello-from-podman > /www/index.html && "
                                         "exec httpd -f -p 80 -h /www")).strip()  # fmt: skip
        addr = podman.ok("inspect", cid, "--format", "{{.NetworkSettings.Networks.cnitest.IPAddress}}").strip()
        assert addr.startswith("10.89.7."), addr
        assert fetch(wan, WAN_HOST, 8080) == "hello-from-podman"
        podman.ok("rm", "-f", "-t", "0", cid)
        assert fetch(wan, WAN_HOST, 8080, tries=1) == ""
    # DEL ran: no lease, veth or published element left (the minirt fixture checks them too)
    leases = f"{engine_host.root}/networks/cnitest/leases"
    assert not [x for x in os.listdir(leases) if x[0].isdigit()] if os.path.isdir(leases) else True


FETCH = """
import sys, time, urllib.request
for _ in range(int(sys.argv[3])):
    try:
        print(urllib.request.urlopen(f"http://{sys.argv[1]}:{sys.argv[2]}/", timeout=3).read().decode().strip())
        break
    except OSError:
        time.sleep(0.1)
"""


def fetch(ns, host: str, port: int, tries: int = 50) -> str:
    """GET / from namespace `ns` ("" when nothing answers)."""
    r = subprocess.run([*ns.prefix(), sys.executable, "-c", FETCH, host, str(port), str(tries)],
                       capture_output=True, text=True, timeout=30)  # fmt: skip
    return r.stdout.strip()


# --- containerd ----------------------------------------------------------------------------------

def test_containerd_run_exec_pause_kill_delete(containerd):
    assert containerd.ctr(*containerd.run_args("c0", "--rm"), IMAGE, "c0", "sh", "-c", "exit 3").returncode == 3
    containerd.ok(*containerd.run_args("c1", "-d"), IMAGE, "c1", "sh", "-c", LOOP)
    r = containerd.ctr("task", "exec", "--exec-id", "e1", "c1", "sh", "-c", "echo exec-ok; exit 4")
    assert r.returncode == 4 and r.stdout == "exec-ok\n", r
    pids = containerd.ok("task", "ps", "c1")
    assert len(pids.splitlines()) >= 2, pids
    containerd.ok("task", "pause", "c1")
    assert "PAUSED" in containerd.ok("task", "ls")
    containerd.ok("task", "resume", "c1")
    containerd.ok("task", "kill", "c1")
    deadline = time.monotonic() + 10
    while "STOPPED" not in containerd.ok("task", "ls"):
        assert time.monotonic() < deadline, containerd.ok("task", "ls")
        time.sleep(0.05)
    containerd.ok("task", "delete", "c1")
    containerd.ok("container", "delete", "c1")
    logged = calls(containerd.workdir)
    used = verbs(logged)
    for verb in ("create", "start", "exec", "ps", "pause", "resume", "kill", "delete"):
        assert verb in used, used
    # the shim's fixed global flags: its --root, a JSON log in the bundle
    assert all(argv[0] == "--root" and "--log-format" in argv for argv in logged), logged[0]
    assert containerd.cgroups.children() == []


def test_containerd_reports_minirt_ocis_json_error(containerd):
    r = containerd.ctr(*containerd.run_args("c2", "--rm"), IMAGE, "c2", "/no/such/program")
    assert r.returncode != 0
    assert 'exec "/no/such/program": no such file or directory' in r.stderr, r.stderr
    assert containerd.ok("container", "ls", "-q") == ""


def test_containerd_run_tty(containerd):
    r = script(containerd.ctr_argv(*containerd.run_args("c3", "--rm", "-t"), IMAGE, "c3", "sh"),
               "tty; echo typed-$((6*7)); exit 6\n")  # fmt: skip
    assert r.returncode == 6, r
    assert "/dev/pts/0" in r.stdout and "typed-42" in r.stdout, r.stdout
