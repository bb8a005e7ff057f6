"""minirt-oci driven directly with OCI bundles, as conmon and containerd's shim drive runc.

Each test has its own --root, its containers' cgroupsPath under the test's cgroup parent, and
runs minirt-oci inside the test's throwaway host namespace. The engine's part is played by
tests/helpers/ocishim.py: a subreaper that runs `create` (or `exec --detach`) and reaps the
container's init once create has exited, recording exit codes. Nothing may be left: the
fixture deletes what a failed test left, waits for the shims, and the `minirt` fixture checks
the cgroups.
"""

import array
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, ROOTFS
from tests.helpers import cgroups
from tests.helpers.oci import runc_spec, write_bundle

MINIRT_OCI = os.environ.get("MINIRT_OCI_BIN") or f"{REPO}/.venv/bin/minirt-oci"
LOOP = ["sh", "-c", "trap 'echo got-term; exit 0' TERM; echo started; while :; do sleep 0.1; done"]


class Shim:
    """One ocishim process: COMMAND's exit code, then the exit codes of what it reaped."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.codes: dict[str, int] = {}

    def _line(self, timeout: float) -> bool:
        import select

        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            return False
        line = self.proc.stdout.readline()
        if not line:
            return False
        name, code = line.split()
        self.codes[name] = int(code)
        return True

    def cmd_code(self, timeout: float = 60) -> int:
        deadline = time.monotonic() + timeout
        while "cmd" not in self.codes:
            if not self._line(max(0.0, deadline - time.monotonic())):
                raise AssertionError("the command run by the shim did not finish")
        return self.codes["cmd"]

    def code_of(self, pid: int, timeout: float = 30) -> int:
        deadline = time.monotonic() + timeout
        while str(pid) not in self.codes:
            if not self._line(max(0.0, deadline - time.monotonic())):
                raise AssertionError(f"process {pid} was not reaped by the shim")
        return self.codes[str(pid)]

    def finish(self, timeout: float = 15) -> None:
        try:
            while self._line(timeout):
                pass
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("a shim still had children: a container process outlived its test")
        finally:
            self.proc.stdout.close()


class Oci:
    def __init__(self, tmp_path, runner):
        self.tmp = tmp_path
        self.root = str(tmp_path / "oci-root")
        self.host = runner.host
        self.cgroup_parent = runner.cgroup_parent
        self.shims: list[Shim] = []

    def argv(self, *args: str, root: bool = True) -> list[str]:
        return [*self.host.prefix(), MINIRT_OCI, *(["--root", self.root] if root else []), *args]

    def __call__(self, *args: str, root: bool = True, timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        if "input" not in kw:
            kw.setdefault("stdin", subprocess.DEVNULL)
        return subprocess.run(self.argv(*args, root=root), capture_output=True, text=True, timeout=timeout, **kw)

    def ok(self, *args: str, **kw) -> str:
        r = self(*args, **kw)
        assert r.returncode == 0, f"minirt-oci {' '.join(args)}: rc {r.returncode}\n{r.stderr}"
        return r.stdout

    def bundle(self, name: str, args: list[str], **kw) -> str:
        cfg = runc_spec(ROOTFS, args, f"{self.cgroup_parent}/{name}", **kw)
        return write_bundle(str(self.tmp / f"bundle-{name}"), cfg)

    def config(self, bundle: str) -> dict:
        with open(f"{bundle}/config.json") as f:
            return json.load(f)

    def rewrite(self, bundle: str, fn) -> None:
        cfg = self.config(bundle)
        fn(cfg)
        write_bundle(bundle, cfg)

    def shim(self, cmd: list[str], name: str) -> Shim:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.helpers.ocishim", "--stdout", str(self.tmp / f"{name}.out"),
             "--stderr", str(self.tmp / f"{name}.err"), "--", *cmd],
            stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=REPO, text=True,
        )  # fmt: skip
        s = Shim(proc)
        self.shims.append(s)
        return s

    def create(self, cid: str, bundle: str, *flags: str, expect_ok: bool = True) -> Shim:
        s = self.shim(self.argv("create", "--bundle", bundle, "--pid-file", self.pid_file(cid), *flags, cid), cid)
        code = s.cmd_code()
        if expect_ok:
            assert code == 0, f"create {cid}: rc {code}\n{self.err(cid)}"
        return s

    def pid_file(self, cid: str) -> str:
        return str(self.tmp / f"{cid}.pid")

    def out(self, name: str) -> str:
        try:
            with open(self.tmp / f"{name}.out") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def err(self, name: str) -> str:
        try:
            with open(self.tmp / f"{name}.err") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_out(self, name: str, text: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.out(name):
            assert time.monotonic() < deadline, f"{text!r} never appeared in {name}'s output: {self.out(name)!r}"
            time.sleep(0.02)
        return self.out(name)

    def state(self, cid: str) -> dict:
        return json.loads(self.ok("state", cid))

    def wait_status(self, cid: str, status: str, timeout: float = 10) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            st = self.state(cid)
            if st["status"] == status:
                return st
            assert time.monotonic() < deadline, f"{cid} stayed {st['status']}, expected {status}"
            time.sleep(0.02)

    def cleanup(self) -> None:
        left = os.listdir(self.root) if os.path.isdir(self.root) else []
        for cid in left:
            self("delete", "--force", cid)
        for s in self.shims:
            s.finish()
        assert not left, f"containers left by the test: {left}"


@pytest.fixture
def oci(tmp_path, minirt):
    o = Oci(tmp_path, minirt)
    try:
        yield o
    finally:
        o.cleanup()
    if os.path.isdir(o.root):
        assert not os.listdir(o.root), f"state left under --root: {os.listdir(o.root)}"


def _pid(oci: Oci, cid: str) -> int:
    with open(oci.pid_file(cid)) as f:
        return int(f.read())


# --- lifecycle -----------------------------------------------------------------------------------

def test_create_start_kill_delete(oci):
    b = oci.bundle("life", LOOP)
    shim = oci.create("life", b)
    st = oci.state("life")
    pid = _pid(oci, "life")
    assert st["status"] == "created" and st["pid"] == pid and st["id"] == "life"
    assert st["bundle"] == b and st["rootfs"] == ROOTFS and st["ociVersion"] == "1.1.0" and st["created"]
    assert oci.out("life") == "", "the program ran before start"
    # the init outlived create, re-parented to the subreaper, in the container's cgroup
    with open(f"/proc/{pid}/stat") as f:
        assert int(f.read().rsplit(")", 1)[1].split()[1]) == shim.proc.pid
    assert pid in json.loads(oci.ok("ps", "--format", "json", "life"))
    oci.ok("start", "life")
    oci.wait_out("life", "started")
    assert oci.state("life")["status"] == "running"
    r = oci("start", "life")
    assert r.returncode == 1 and "already running" in r.stderr
    r = oci("delete", "life")
    assert r.returncode == 1 and "not stopped: running" in r.stderr
    oci.ok("kill", "life", "TERM")
    assert shim.code_of(pid) == 0
    assert "got-term" in oci.out("life")
    st = oci.wait_status("life", "stopped")
    assert st["pid"] == 0
    oci.ok("delete", "life")
    assert not os.path.exists(f"{oci.root}/life")
    assert oci("state", "life").returncode == 1
    assert not cgroups.leftovers(oci.cgroup_parent, timeout=0)


@pytest.mark.parametrize("sig", ["15", "SIGTERM", "term"])
def test_kill_signal_spellings(oci, sig):
    oci.create("k", oci.bundle("k", LOOP))
    oci.ok("start", "k")
    oci.wait_out("k", "started")
    oci.ok("kill", "k", sig)
    oci.wait_status("k", "stopped")
    assert "got-term" in oci.out("k")
    oci.ok("delete", "k")


def test_kill_all_and_exit_code(oci):
    shim = oci.create("ex", oci.bundle("ex", ["sh", "-c", "sleep 30 & sleep 30 & wait"]))
    pid = _pid(oci, "ex")
    oci.ok("start", "ex")
    deadline = time.monotonic() + 5
    while len(json.loads(oci.ok("ps", "--format", "json", "ex"))) < 3:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    oci.ok("kill", "--all", "ex", "9")
    assert shim.code_of(pid) == 137
    oci.wait_status("ex", "stopped")
    oci.ok("delete", "ex")
    shim2 = oci.create("ex3", oci.bundle("ex3", ["sh", "-c", "exit 3"]))
    pid = _pid(oci, "ex3")
    oci.ok("start", "ex3")
    assert shim2.code_of(pid) == 3
    assert oci.wait_status("ex3", "stopped")["pid"] == 0
    oci.ok("delete", "ex3")


def test_delete_force_running_and_created(oci):
    oci.create("f1", oci.bundle("f1", LOOP))
    oci.ok("start", "f1")
    oci.wait_out("f1", "started")
    oci.ok("delete", "--force", "f1")
    assert not os.path.exists(f"{oci.root}/f1")
    # state partly gone: a directory without state.json (an aborted create) is removed
    os.makedirs(f"{oci.root}/half")
    oci.ok("delete", "half")
    assert not os.path.exists(f"{oci.root}/half")
    # ... or its cgroup already removed by someone else (the init killed with it)
    oci.create("f3", oci.bundle("f3", LOOP))
    cgroups.remove(f"{oci.cgroup_parent}/f3")
    oci.wait_status("f3", "stopped")
    oci.ok("delete", "f3")
    assert not os.path.exists(f"{oci.root}/f3")
    # a created container is deleted without --force (runc), its parked init killed
    oci.create("f2", oci.bundle("f2", LOOP))
    oci.ok("delete", "f2")
    assert oci.out("f2") == ""
    assert not cgroups.leftovers(oci.cgroup_parent, timeout=2)


def test_unknown_id_and_json_log(oci, tmp_path):
    assert oci("delete", "--force", "nosuch").returncode == 0  # runc: nothing to delete is no error with --force
    for args in (["state", "nosuch"], ["start", "nosuch"], ["kill", "nosuch", "KILL"], ["delete", "nosuch"],
                 ["exec", "nosuch", "true"], ["ps", "nosuch"], ["pause", "nosuch"]):
        r = oci(*args)
        assert r.returncode == 1, args
        assert "container does not exist" in r.stderr, (args, r.stderr)
    log = tmp_path / "log.json"
    r = oci("--log", str(log), "--log-format", "json", "state", "nosuch", root=True)
    assert r.returncode == 1
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines[-1]["level"] == "error" and lines[-1]["msg"] == "container does not exist" and lines[-1]["time"]
    r = oci("--systemd-cgroup", "state", "x")
    assert r.returncode == 1 and "--systemd-cgroup is not supported" in r.stderr


def test_version_and_features(oci):
    lines = oci.ok("--version", root=False).splitlines()
    assert lines[0].startswith("minirt-oci version ")
    assert lines[1].startswith("commit: ") and lines[2] == "spec: 1.1.0"
    f = json.loads(oci.ok("features", root=False))
    assert f["ociVersionMax"] == "1.1.0" and "createRuntime" in f["hooks"] and "rbind" in f["mountOptions"]
    assert set(f["linux"]["namespaces"]) >= {"pid", "network", "mount", "user", "cgroup"}
    assert f["linux"]["cgroup"]["systemd"] is False and f["linux"]["seccomp"]["enabled"] is True
    assert "SCMP_ACT_ERRNO" in f["linux"]["seccomp"]["actions"] and "CAP_SYS_ADMIN" in f["linux"]["capabilities"]
    assert f["linux"]["apparmor"]["enabled"] is False


def test_container_view(oci):
    """What config.json asked for: hostname, capabilities, no_new_privs, rlimit, masked and
    read-only paths, a read-only root, the cgroup mount, its own namespaces."""
    prog = ("hostname; grep -E '^(CapEff|CapBnd|CapInh|CapAmb|NoNewPrivs)' /proc/self/status; ulimit -n; "
            "cat /proc/kcore | wc -c; touch /x 2>&1; echo 1 > /proc/sys/kernel/domainname 2>&1; "
            "ls /sys/fs/cgroup; readlink /proc/self/ns/net; cat /sys/class/net/lo/operstate; "
            "echo more >> /etc/group && grep -c :x:0: /etc/group && tail -n1 /etc/group; "
            "grep memory /proc/self/cgroup; id")  # fmt: skip
    b = oci.bundle("view", ["sh", "-c", prog])

    def change(c):
        # tmpcopyup (podman's --tmpfs over an image directory): the image's /etc, writable
        c["mounts"].append({"destination": "/etc", "type": "tmpfs", "source": "tmpfs",
                            "options": ["tmpcopyup", "mode=755"]})  # fmt: skip
        c["linux"]["namespaces"].append({"type": "cgroup"})

    oci.rewrite(b, change)
    oci.create("view", b)
    oci.ok("start", "view")
    out = oci.wait_out("view", "uid=")
    assert out.splitlines()[0] == "runc"
    assert "CapEff:\t0000000020000420" in out and "CapBnd:\t0000000020000420" in out
    assert "NoNewPrivs:\t1" in out and "\n1024\n" in out
    assert "\n0\n" in out  # /proc/kcore masked by /dev/null
    assert "Read-only file system" in out
    assert "memory" in out and "pids" in out
    assert "\nunknown\n" in out  # lo is up (its operstate reads "unknown" once up, "down" before)
    assert "\n1\nmore\n" in out  # the image's /etc/group (its root line) copied up, and writable
    assert ":memory:/\n" in out  # a cgroup namespace rooted at the container's cgroup
    assert "more" not in open(f"{ROOTFS}/etc/group").read()
    assert os.readlink(f"/proc/{oci.host.pid}/ns/net") not in out
    oci.wait_status("view", "stopped")
    oci.ok("delete", "view")


def test_join_network_namespace_by_path_and_user(oci):
    b = oci.bundle("join", ["sh", "-c", "readlink /proc/self/ns/net; id"])

    def change(cfg):
        cfg["linux"]["namespaces"] = [{"type": "network", "path": f"/proc/{oci.host.pid}/ns/net"} if n["type"] ==
                                      "network" else n for n in cfg["linux"]["namespaces"]]  # fmt: skip
        cfg["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [10, 20]}

    oci.rewrite(b, change)
    oci.create("join", b)
    oci.ok("start", "join")
    out = oci.wait_out("join", "uid=")
    assert out.splitlines()[0] == os.readlink(f"/proc/{oci.host.pid}/ns/net")
    assert "uid=1000(app) gid=1000(app) groups=10(wheel),20" in out
    oci.wait_status("join", "stopped")
    oci.ok("delete", "join")


def test_no_pivot_and_preserve_fds(oci, tmp_path):
    b = oci.bundle("np", ["sh", "-c", "echo via-fd3 >&3; echo done"])
    sink = tmp_path / "fd3"
    sink.write_text("")
    cmd = ["sh", "-c", f'exec "$@" 3>>{sink}', "sh",
           *oci.argv("create", "--bundle", b, "--pid-file", oci.pid_file("np"), "--no-pivot", "--no-new-keyring",
                     "--preserve-fds", "1", "np")]  # fmt: skip
    shim = oci.shim(cmd, "np")
    assert shim.cmd_code() == 0, oci.err("np")
    oci.ok("start", "np")
    oci.wait_out("np", "done")
    assert sink.read_text() == "via-fd3\n"
    oci.wait_status("np", "stopped")
    oci.ok("delete", "np")


# --- exec ----------------------------------------------------------------------------------------

def test_exec_args_process_and_detach(oci, tmp_path):
    oci.create("ex", oci.bundle("ex", LOOP))
    oci.ok("start", "ex")
    oci.wait_out("ex", "started")
    r = oci("exec", "ex", "sh", "-c", "hostname; readlink /proc/1/exe; exit 7")
    assert r.returncode == 7 and r.stdout.splitlines() == ["runc", "/bin/busybox"], r.stderr
    r = oci("exec", "--env", "FOO=bar", "--cwd", "/etc", "--user", "1000:1000", "ex", "sh", "-c",
            "echo $FOO; pwd; id -u")
    assert r.stdout.split() == ["bar", "/etc", "1000"], r.stderr
    r = oci("exec", "--tty", "ex", "sh", "-c", "tty; exit 5")  # no console socket: minirt-oci relays the pty
    assert r.returncode == 5 and r.stdout.startswith("/dev/pts/"), (r.stdout, r.stderr)
    r = oci("exec", "ex", "nosuchprogram")
    assert r.returncode == 127 and "executable file not found" in r.stderr
    process = dict(oci.config(str(tmp_path / "bundle-ex"))["process"], args=["sh", "-c", "echo from-process; exit 4"])
    pf = tmp_path / "process.json"
    pf.write_text(json.dumps(process))
    r = oci("exec", "--process", str(pf), "ex")
    assert r.returncode == 4 and r.stdout == "from-process\n", r.stderr
    # --detach: returns once started; the pid file names it; it is re-parented to the caller's
    # subreaper and sits in the container's cgroup
    process["args"] = ["sh", "-c", "sleep 30"]
    pf.write_text(json.dumps(process))
    pidf = tmp_path / "exec.pid"
    shim = oci.shim(oci.argv("exec", "--process", str(pf), "--detach", "--pid-file", str(pidf), "ex"), "exec-d")
    assert shim.cmd_code() == 0, oci.err("exec-d")
    epid = int(pidf.read_text())
    assert epid in json.loads(oci.ok("ps", "--format", "json", "ex"))
    with open(f"/proc/{epid}/stat") as f:
        assert int(f.read().rsplit(")", 1)[1].split()[1]) == shim.proc.pid
    table = oci.ok("ps", "ex").splitlines()
    assert "PID" in table[0] and any(str(epid) in line for line in table[1:])
    oci.ok("kill", "--all", "ex", "KILL")
    assert shim.code_of(epid) == 137
    oci.wait_status("ex", "stopped")
    oci.ok("delete", "ex")


class ConsoleListener:
    """The engine's end of --console-socket: accepts one connection and takes the pty master
    from its single SCM_RIGHTS message."""

    def __init__(self, path: str):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.sock.settimeout(30)

    def receive(self) -> tuple[bytes, int]:
        conn, _ = self.sock.accept()
        with conn:
            fds = array.array("i")
            msg, anc, _flags, _ = conn.recvmsg(1024, socket.CMSG_SPACE(4 * 4))
            assert len(anc) == 1, f"expected one control message, got {anc}"
            level, typ, data = anc[0]
            assert (level, typ) == (socket.SOL_SOCKET, socket.SCM_RIGHTS)
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
            assert len(fds) == 1, f"expected exactly one fd, got {list(fds)}"
            assert conn.recv(16) == b"", "more than one message on the console socket"
        return msg, fds[0]

    def close(self) -> None:
        self.sock.close()
        os.unlink(self.path)


def _read_pty(master: int, until: bytes, timeout: float = 10) -> bytes:
    import select

    out = b""
    deadline = time.monotonic() + timeout
    while until not in out and time.monotonic() < deadline:
        r, _, _ = select.select([master], [], [], 0.1)
        if r:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


def test_console_socket_create_and_exec(oci, tmp_path):
    b = oci.bundle("tty", ["sh", "-c", "tty; stty size; echo init-ok; read line; echo got:$line; sleep 30"],
                   terminal=True)  # fmt: skip
    oci.rewrite(b, lambda c: c["process"].update(consoleSize={"height": 30, "width": 100}))
    lst = ConsoleListener(str(tmp_path / "console.sock"))
    try:
        import threading

        got = {}
        t = threading.Thread(target=lambda: got.update(r=lst.receive()))
        t.start()
        oci.create("tty", b, "--console-socket", lst.path)
        t.join(30)
        name, master = got["r"]
        assert name == b"/dev/ptmx"
        oci.ok("start", "tty")
        out = _read_pty(master, b"init-ok")
        assert b"/dev/pts/0" in out and b"30 100" in out, out
        os.write(master, b"hello\n")
        assert b"got:hello" in _read_pty(master, b"got:hello")
        # exec --tty through the same kind of socket (conmon's exec -t), detached
        t = threading.Thread(target=lambda: got.update(e=lst.receive()))
        t.start()
        shim = oci.shim(oci.argv("exec", "--tty", "--detach", "--console-socket", lst.path, "--pid-file",
                                 str(tmp_path / "e.pid"), "tty", "sh", "-c", "tty; echo exec-ok"),
                        "exec-tty")  # fmt: skip
        assert shim.cmd_code() == 0, oci.err("exec-tty")
        t.join(30)
        _, emaster = got["e"]
        out = _read_pty(emaster, b"exec-ok")
        assert b"/dev/pts/1" in out and b"exec-ok" in out, out
        assert shim.code_of(int((tmp_path / "e.pid").read_text())) == 0
        os.close(emaster)
        oci.ok("kill", "tty", "KILL")
        oci.wait_status("tty", "stopped")
        os.close(master)
        oci.ok("delete", "tty")
    finally:
        lst.close()


# --- hooks ---------------------------------------------------------------------------------------

def _hook_script(path, body: str) -> str:
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def test_hooks(oci, tmp_path):
    out = tmp_path / "hooks"
    out.mkdir()
    save = _hook_script(tmp_path / "save.sh", f'cat > {out}/$1.json; readlink /proc/self/ns/mnt > {out}/$1.mnt\n')
    b = oci.bundle("hk", ["sh", "-c", "echo prog; sleep 1"])

    def change(cfg):
        # /mnt exists in the rootfs: the bundle is the shared build rootfs, where a new mount point would stay
        cfg["mounts"].append({"destination": "/mnt", "type": "bind", "source": str(out), "options": ["rbind"]})
        cfg["hooks"] = {
            k: [{"path": save, "args": ["save.sh", k], "env": ["X=1"], "timeout": 5}]
            for k in ("prestart", "createRuntime", "createContainer", "poststart", "poststop")
        }
        # startContainer's path resolves inside the container (busybox's sh there)
        cfg["hooks"]["startContainer"] = [{"path": "/bin/sh",
                                            "args": ["sh", "-c", "cat > /mnt/startContainer.json"]}]

    oci.rewrite(b, change)
    oci.create("hk", b)
    pid = _pid(oci, "hk")
    for k in ("prestart", "createRuntime", "createContainer"):
        st = json.loads((out / f"{k}.json").read_text())
        assert st["id"] == "hk" and st["pid"] == pid and st["status"] == "creating" and st["bundle"] == b, k
    host_mnt = os.readlink(f"/proc/{oci.host.pid}/ns/mnt")
    assert (out / "createRuntime.mnt").read_text().strip() == host_mnt
    assert (out / "createContainer.mnt").read_text().strip() == os.readlink(f"/proc/{pid}/ns/mnt")
    assert not (out / "poststart.json").exists()
    oci.ok("start", "hk")
    oci.wait_out("hk", "prog")
    assert json.loads((out / "poststart.json").read_text())["status"] == "running"
    assert json.loads((out / "startContainer.json").read_text())["id"] == "hk"
    oci.wait_status("hk", "stopped")
    oci.ok("delete", "hk")
    assert json.loads((out / "poststop.json").read_text())["status"] == "stopped"


def test_failing_create_hook_leaves_nothing(oci, tmp_path):
    fail = _hook_script(tmp_path / "fail.sh", "echo nope >&2; exit 1\n")
    b = oci.bundle("hf", LOOP)
    oci.rewrite(b, lambda c: c.update(hooks={"createRuntime": [{"path": fail}]}))
    log = tmp_path / "log.json"
    s = oci.shim([*oci.argv("--log", str(log), "--log-format", "json", root=False), "--root", oci.root, "create",
                  "--bundle", b, "hf"], "hf")  # fmt: skip
    assert s.cmd_code() == 1
    assert "createRuntime hook" in oci.err("hf") and "nope" in oci.err("hf")
    last = json.loads(log.read_text().splitlines()[-1])
    assert last["level"] == "error" and "exit status 1" in last["msg"]
    assert not os.path.exists(f"{oci.root}/hf")
    assert not cgroups.leftovers(oci.cgroup_parent, timeout=2)
    # a hook past its timeout is killed and fails create the same way
    oci.rewrite(b, lambda c: c.update(hooks={"prestart": [{"path": "/bin/sleep", "args": ["sleep", "30"],
                                                           "timeout": 1}]}))  # fmt: skip
    t0 = time.monotonic()
    s = oci.create("ht", b, expect_ok=False)
    assert s.cmd_code() == 1 and "timeout after 1s" in oci.err("ht") and time.monotonic() - t0 < 10
    assert not os.path.exists(f"{oci.root}/ht")
    # a poststop hook that fails is only a warning: delete succeeds
    b = oci.bundle("pf", ["true"])
    oci.rewrite(b, lambda c: c.update(hooks={"poststop": [{"path": fail}]}))
    oci.create("pf", b)
    oci.ok("start", "pf")
    oci.wait_status("pf", "stopped")
    r = oci("delete", "pf")
    assert r.returncode == 0 and "poststop hook" in r.stderr


def test_refused_config_leaves_nothing(oci):
    b = oci.bundle("rf", LOOP)
    oci.rewrite(b, lambda c: c["linux"].update(cgroupsPath="system.slice:minirt:rf"))
    s = oci.create("rf", b, expect_ok=False)
    assert s.cmd_code() == 1 and "systemd" in oci.err("rf")
    oci.rewrite(b, lambda c: c["linux"].update(cgroupsPath=f"{oci.cgroup_parent}/rf",
                                                resources={"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}))
    s = oci.create("rf2", b, expect_ok=False)
    assert s.cmd_code() == 1 and "hugetlb" in oci.err("rf2")
    oci.rewrite(b, lambda c: c.update(process=dict(c["process"], args=["nosuchprogram"]), linux=dict(
        c["linux"], resources={})))  # fmt: skip
    s = oci.create("rf3", b, expect_ok=False)
    assert s.cmd_code() == 1 and "executable file not found" in oci.err("rf3")
    assert not os.path.isdir(oci.root) or not os.listdir(oci.root)
    assert not cgroups.leftovers(oci.cgroup_parent, timeout=2)


# --- cgroups: pause, update, seccomp ------------------------------------------------------------

def test_pause_resume_update_ps(oci):
    b = oci.bundle("pr", LOOP)
    oci.rewrite(b, lambda c: c["linux"]["resources"].update(memory={"limit": 64 << 20}, pids={"limit": 100}))
    oci.create("pr", b)
    oci.ok("start", "pr")
    oci.wait_out("pr", "started")
    d = cgroups.dirs(f"{oci.cgroup_parent}/pr")
    assert open(f"{d['memory']}/memory.limit_in_bytes").read().strip() == str(64 << 20)
    assert open(f"{d['pids']}/pids.max").read().strip() == "100"
    oci.ok("pause", "pr")
    assert oci.state("pr")["status"] == "paused"
    assert open(f"{d['freezer']}/freezer.state").read().strip() == "FROZEN"
    assert oci("pause", "pr").returncode == 1
    oci.ok("resume", "pr")
    assert oci.state("pr")["status"] == "running"
    assert open(f"{d['freezer']}/freezer.state").read().strip() == "THAWED"
    oci.ok("update", "--resources", "-", "pr", input=json.dumps({"memory": {"limit": 128 << 20}}))
    assert open(f"{d['memory']}/memory.limit_in_bytes").read().strip() == str(128 << 20)
    r = oci("update", "--resources", "-", "pr", input=json.dumps({"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]}))
    assert r.returncode == 1 and "hugetlb" in r.stderr
    pids = json.loads(oci.ok("ps", "--format", "json", "pr"))
    assert _pid(oci, "pr") in pids
    ev = json.loads(oci.ok("events", "--stats", "pr"))
    assert ev["type"] == "stats" and ev["id"] == "pr" and ev["data"]["memory"]["usage"]["limit"] == 128 << 20
    assert ev["data"]["pids"]["current"] >= 1 and ev["data"]["cpu"]["usage"]["total"] > 0
    oci.ok("delete", "--force", "pr")


def test_seccomp_profile(oci):
    b = oci.bundle("sc", ["sh", "-c", "mkdir /dev/shm/x 2>&1; echo rc=$?; grep Seccomp: /proc/self/status"])
    oci.rewrite(b, lambda c: c["linux"].update(seccomp={
        "defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}))  # fmt: skip
    oci.create("sc", b)
    oci.ok("start", "sc")
    out = oci.wait_out("sc", "Seccomp:")
    assert "Operation not permitted" in out and "rc=1" in out and "Seccomp:\t2" in out
    oci.wait_status("sc", "stopped")
    oci.ok("delete", "sc")


def test_user_namespace(oci):
    b = oci.bundle("un", ["sh", "-c", "cat /proc/self/uid_map; id -u; echo done; sleep 30"])

    def change(cfg):
        cfg["linux"]["namespaces"].append({"type": "user"})
        cfg["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
        cfg["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]

    oci.rewrite(b, change)
    oci.create("un", b)
    pid = _pid(oci, "un")
    with open(f"/proc/{pid}/status") as f:
        assert any(line.split()[1:2] == ["200000"] for line in f if line.startswith("Uid:"))
    oci.ok("start", "un")
    out = oci.wait_out("un", "done")
    assert out.split()[:4] == ["0", "200000", "65536", "0"]
    r = oci("exec", "un", "sh", "-c", "id -u; cat /proc/self/uid_map")
    assert r.returncode == 0 and r.stdout.split() == ["0", "0", "200000", "65536"], r.stderr
    oci.ok("delete", "--force", "un")


def test_signal_to_created_container_and_kill_stopped(oci):
    shim = oci.create("sk", oci.bundle("sk", LOOP))
    pid = _pid(oci, "sk")
    oci.ok("kill", "sk", "KILL")
    assert shim.code_of(pid) == 137
    oci.wait_status("sk", "stopped")
    r = oci("kill", "sk", "TERM")
    assert r.returncode == 1 and "not running" in r.stderr
    r = oci("start", "sk")
    assert r.returncode == 1 and "stopped" in r.stderr
    oci.ok("delete", "sk")
