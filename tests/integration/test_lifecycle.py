"""Detached containers and the lifecycle commands, against the real kernel."""

import json
import os
import random
import signal
import subprocess
import threading
import time

import pytest

from tests.helpers import kernel
from tests.integration.test_exit_and_signals import _read_until


def ok(r: subprocess.CompletedProcess) -> str:
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def inspect(minirt, ref: str) -> dict:
    return json.loads(ok(minirt("inspect", ref)))[0]


def wait_for(pred, timeout: float = 10, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_detached_ps_exec_logs_inspect_rm(minirt):
    cid = ok(minirt("run", "-d", "--name", "web", "--hostname", "webhost", "--",
                    "sh", "-c", "echo hello; echo oops >&2; exec sleep 60")).strip()  # fmt: skip
    assert len(cid) == 64
    ps = ok(minirt("ps"))
    assert "web" in ps and cid[:12] in ps and "running" in ps
    # Docker's `ps --format json`: one object a line, Docker's keys, every value a string
    [line] = ok(minirt("ps", "--format", "json")).splitlines()
    row = json.loads(line)
    assert (row["ID"], row["Names"], row["State"], row["Status"]) == (cid[:12], "web", "running", "running")
    assert row["Command"].startswith('"sh -c') and set(row) >= {"CreatedAt", "Image", "Ports", "Networks"}
    r = minirt("ps", "--format", "{{.ID}}")
    assert r.returncode == 125 and "only 'json'" in r.stderr
    doc = inspect(minirt, cid[:12])
    assert doc["Id"] == cid and doc["State"]["Running"] and doc["Name"] == "web"
    ip = doc["NetworkSettings"]["IPAddress"]
    assert ip and doc["NetworkSettings"]["MacAddress"].startswith("02:42:")
    # exec: the container's pid namespace, hostname and address
    out = ok(minirt("exec", "web", "sh", "-c", "hostname; cat /proc/1/cmdline | tr '\\0' ' '; echo; ip -4 -o addr show eth0"))
    lines = out.splitlines()
    assert lines[0] == "webhost" and lines[1].startswith("sleep 60")
    assert f"inet {ip}/" in lines[2]
    assert minirt("exec", "web", "sh", "-c", "exit 4").returncode == 4
    r = minirt("exec", "web", "nosuch")
    assert r.returncode == 127 and r.stderr == 'minirt: exec "nosuch": executable file not found in $PATH\n'
    out = ok(minirt("exec", "-e", "X=1", "-w", "/tmp", "web", "sh", "-c", 'echo "$X $PWD"; cat /proc/self/status'))
    assert out.startswith("1 /tmp\n") and "CapEff:\t00000000a80425fb" in out and "NoNewPrivs:\t1" in out
    wait_for(lambda: "oops" in minirt("logs", "web").stderr, what="logs")
    r = minirt("logs", "web")
    assert r.stdout == "hello\n" and r.stderr == "oops\n"
    r = minirt("rm", "web")
    assert r.returncode == 125 and "is running" in r.stderr
    ok(minirt("rm", "-f", "web"))
    assert minirt.containers() == [] and ok(minirt("ps", "-a")).count("\n") == 1


def test_exec_tty_is_a_real_pty(minirt):
    ok(minirt("run", "-d", "--name", "tt", "--", "sleep", "60"))
    import pty

    pid, fd = pty.fork()
    if pid == 0:
        argv = minirt.argv("exec", "-it", "tt", "sh", "-c", "tty; test -t 0 && echo isatty")
        os.execvpe(argv[0], argv, minirt.env)
    out = _read_until(fd, b"\x00never")  # everything until the pty closes
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, out
    assert b"/dev/pts/" in out and b"isatty" in out
    ok(minirt("rm", "-f", "tt"))


def test_logs_survive_exit_and_follow(minirt):
    ok(minirt("run", "-d", "--name", "job", "--", "sh", "-c", "for i in 1 2 3; do echo line $i; sleep 0.2; done"))
    r = minirt("logs", "-f", "job", timeout=20)
    assert r.stdout == "line 1\nline 2\nline 3\n"
    wait_for(lambda: "exited (0)" in ok(minirt("ps", "-a")), what="exit recorded")
    assert ok(minirt("logs", "job")) == "line 1\nline 2\nline 3\n"
    assert inspect(minirt, "job")["State"]["ExitCode"] == 0
    ok(minirt("rm", "job"))


def test_stop_kills_after_timeout_and_start_keeps_identity(minirt):
    cid = ok(minirt("run", "-d", "--name", "stubborn", "--", "sh", "-c",
                    "trap '' TERM; while true; do sleep 0.1; done")).strip()  # fmt: skip
    ip = inspect(minirt, "stubborn")["NetworkSettings"]["IPAddress"]
    t0 = time.monotonic()
    ok(minirt("stop", "-t", "1", "stubborn"))
    took = time.monotonic() - t0
    assert 0.9 < took < 5, took  # SIGTERM ignored -> SIGKILL after 1 s
    doc = inspect(minirt, "stubborn")
    assert doc["State"]["Status"] == "exited" and doc["State"]["ExitCode"] == 137
    ok(minirt("start", "stubborn"))
    doc = inspect(minirt, "stubborn")
    assert doc["Id"] == cid and doc["State"]["Running"] and doc["NetworkSettings"]["IPAddress"] == ip
    ok(minirt("rm", "-f", "stubborn"))


def test_kill_with_a_signal(minirt):
    ok(minirt("run", "-d", "--name", "hup", "--", "sh", "-c",
              "trap 'echo got-hup; exit 5' HUP; while true; do sleep 0.1; done"))  # fmt: skip
    ok(minirt("kill", "-s", "HUP", "hup"))
    wait_for(lambda: "exited (5)" in ok(minirt("ps", "-a")), what="exit 5")
    assert ok(minirt("logs", "hup")) == "got-hup\n"
    ok(minirt("rm", "hup"))


def test_restart_on_failure_2_restarts_exactly_twice(minirt):
    ok(minirt("run", "-d", "--name", "flaky", "--restart", "on-failure:2", "--", "sh", "-c", "echo run; exit 3"))
    wait_for(lambda: inspect(minirt, "flaky")["State"]["Status"] == "exited"
             and inspect(minirt, "flaky")["State"]["RestartCount"] == 2, timeout=20, what="two restarts")  # fmt: skip
    # the supervisor exits once the policy says no: after that no third run can come
    wait_for(lambda: not kernel.minirt_processes(set(), root=minirt.root), what="the supervisor to give up")
    assert ok(minirt("logs", "flaky")) == "run\nrun\nrun\n"
    assert inspect(minirt, "flaky")["State"]["ExitCode"] == 3
    ok(minirt("rm", "flaky"))


def test_references_and_errors(minirt):
    cid = ok(minirt("run", "--name", "done1", "--", "true")).strip() or None
    cid = inspect(minirt, "done1")["Id"]
    assert inspect(minirt, cid[:12])["Name"] == "done1"
    assert inspect(minirt, cid)["Name"] == "done1"
    r = minirt("inspect", "nosuch")
    assert r.returncode == 125 and r.stderr == "minirt: no such container: nosuch\n"
    r = minirt("run", "--rm", "--restart", "always", "--", "true")
    assert r.returncode == 125 and "needs -d" in r.stderr
    r = minirt("run", "-d", "--", "/no/such")
    assert r.returncode == 127 and r.stderr == 'minirt: exec "/no/such": no such file or directory\n'
    ok(minirt("rm", "done1"))


def test_rm_f_of_many_kills_ahead_but_stops_at_a_bad_reference(minirt):
    """`rm -f` of many kills a few containers ahead of their removal (their owners tear down
    meanwhile): all are removed, in order, none restarted (restart=always), each name printed;
    a reference that does not resolve stops it there, and what follows is never touched."""
    names = [f"many{i}" for i in range(12)]
    for name in names:
        ok(minirt("run", "-d", "--name", name, "--restart", "always", "--", "sleep", "60"))
    ok(minirt("run", "-d", "--name", "after", "--", "sleep", "60"))
    pid_after = inspect(minirt, "after")["State"]["Pid"]
    r = minirt("rm", "-f", *names, "nosuch", "after")
    assert r.returncode == 125 and r.stderr == "minirt: no such container: nosuch\n", r.stderr
    assert r.stdout.split() == names
    # the one after the bad reference still runs, with the same init
    doc = inspect(minirt, "after")
    assert doc["State"]["Running"] and doc["State"]["Pid"] == pid_after
    ok(minirt("rm", "-f", "after"))
    assert minirt.containers() == []
    # no veth, no container process left in the test's host namespace
    links = json.loads(subprocess.run([*minirt.host.prefix(), "ip", "-j", "link", "show", "type", "veth"],
                                      capture_output=True, text=True, check=True).stdout)  # fmt: skip
    assert links == []


def test_20_parallel_run_d_and_rm_f_leave_the_host_clean(minirt):
    results = []

    def one(i):
        r = minirt("run", "-d", "--name", f"p{i}", "--", "sleep", "30")
        results.append(r)
        if r.returncode == 0:
            results.append(minirt("rm", "-f", f"p{i}"))

    threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.returncode for r in results] == [0] * 40, [r.stderr for r in results if r.returncode]
    assert minirt.containers() == []
    assert not kernel.minirt_processes({os.getpid()}, root=minirt.root) or wait_for(
        lambda: not kernel.minirt_processes({os.getpid()}, root=minirt.root), what="supervisors to exit")


def test_kill_9_chaos_then_gc_leaves_nothing(minirt):
    """kill -9 of the runtime and the supervisor at random points of setup, 20 times; then gc."""
    rng = random.Random(4)
    survivors = 0
    for i in range(20):
        p = minirt.popen("run", "-d", "--name", f"c{i}", "--", "sleep", "30")
        time.sleep(rng.uniform(0, 0.06))
        # the runtime and its supervisor (no sentinel for -d): everything of this run but the container
        for proc in kernel.minirt_processes(set(), root=minirt.root):
            pid = int(proc.split()[0])
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        p.wait(timeout=10)
        survivors += p.returncode == 0
    # a supervisor forked just after a round's scan outlives that round's kill: kill it now too
    # (its container then dies with it, as any other)
    def killed_all() -> bool:
        left = kernel.minirt_processes(set(), root=minirt.root)
        for proc in left:
            try:
                os.kill(int(proc.split()[0]), signal.SIGKILL)
            except ProcessLookupError:
                pass
        return not left

    wait_for(killed_all, what="killed processes to go")
    ok(minirt("gc"))
    # every container that remains is a stopped record, and nothing runs or holds a lease or veth
    for cid in minirt.containers():
        st = json.load(open(f"{minirt.root}/containers/{cid}/state.json"))
        assert st["status"] == "exited", st
    ok(minirt("rm", *[c[:12] for c in minirt.containers()])) if minirt.containers() else None
    assert minirt.containers() == []
    assert os.listdir(f"{minirt.root}/names") == [] if os.path.isdir(f"{minirt.root}/names") else True


def test_gc_does_not_touch_healthy_containers(minirt):
    ok(minirt("run", "-d", "--name", "healthy", "--", "sleep", "30"))
    assert ok(minirt("gc")) == ""
    assert inspect(minirt, "healthy")["State"]["Running"]
    ok(minirt("rm", "-f", "healthy"))


@pytest.mark.parametrize("bad, message", [
    (["--hostname", "x"], "conflicting options: hostname and the network mode"),
    (["--dns", "203.0.113.5"], "conflicting options: dns and the network mode"),
])  # fmt: skip
def test_net_container_joins_a_running_containers_network(minirt, bad, message):
    ok(minirt("run", "-d", "--name", "web", "--hostname", "webhost", "--", "httpd", "-f", "-p", "80", "-h", "/var/www"))
    ip = inspect(minirt, "web")["NetworkSettings"]["IPAddress"]
    out = ok(minirt("run", "--rm", "--net", "container:web", "--", "sh", "-c",
                    "ip -4 -o addr show eth0; hostname; wget -qO- http://127.0.0.1:80/"))  # fmt: skip
    assert f"inet {ip}/" in out and "webhost" in out and "minirt" in out
    r = minirt("run", "--rm", "--net", "container:web", *bad, "--", "true")
    assert r.returncode == 125 and r.stderr == f"minirt: {message}\n"
    r = minirt("run", "--rm", "--net", "container:nosuch", "--", "true")
    assert r.returncode == 125 and "no such container" in r.stderr
    ok(minirt("rm", "-f", "web"))
