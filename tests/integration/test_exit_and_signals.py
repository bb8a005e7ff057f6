"""Exit codes (Docker's), signals through minirt, --init, the terminal, and clean failures."""

import os
import pty
import select
import signal
import subprocess
import time

import pytest

from tests.helpers import kernel


def container_pid(p: subprocess.Popen, timeout: float = 10) -> int:
    """The container init: the only child of the minirt process."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = open(f"/proc/{p.pid}/task/{p.pid}/children").read().split()
        if kids:
            return int(kids[0])
        time.sleep(0.01)
    raise AssertionError("container process never appeared")


def wait_line(p: subprocess.Popen, expected: str) -> None:
    line = p.stdout.readline().strip()
    assert line == expected, (line, p.stderr.read() if p.poll() is not None else "")


@pytest.mark.parametrize(
    "argv, code, message",
    [
        (["true"], 0, None),
        (["sh", "-c", "exit 3"], 3, None),
        (["nosuchcmd"], 127, 'minirt: exec "nosuchcmd": executable file not found in $PATH'),
        (["/no/such/file"], 127, 'minirt: exec "/no/such/file": no such file or directory'),
        (["/etc/passwd"], 126, 'minirt: exec "/etc/passwd": permission denied'),
        (["/etc"], 126, 'minirt: exec "/etc": is a directory'),
        (["sh", "-c", "kill -9 $$; echo alive"], 0, None),  # PID 1 ignores its own SIGKILL, as in Docker
    ],
)
def test_exit_codes(minirt, argv, code, message):
    r = minirt("run", "--rm", "--", *argv)
    assert r.returncode == code, r.stderr
    if message:
        assert r.stderr.strip() == message  # exactly one line
    assert minirt.containers() == []


def test_sigkill_from_outside_gives_137(minirt):
    p = minirt.popen("run", "--rm", "--", "sh", "-c", "echo up; sleep 60")
    wait_line(p, "up")
    os.kill(container_pid(p), signal.SIGKILL)
    assert p.wait(timeout=20) == 137
    assert minirt.containers() == []


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1])
def test_signal_to_minirt_reaches_the_command(minirt, sig):
    name = signal.Signals(sig).name[3:]
    script = f'trap "echo got-{name}; exit 7" {name}; echo ready; while :; do sleep 0.05; done'
    p = minirt.popen("run", "--rm", "--", "sh", "-c", script)
    wait_line(p, "ready")
    p.send_signal(sig)
    assert p.wait(timeout=20) == 7
    assert p.stdout.read().strip() == f"got-{name}"


def _ignore_int_quit_pipe() -> None:
    for sig in (signal.SIGINT, signal.SIGQUIT, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_IGN)


@pytest.mark.parametrize("args", [["run", "--rm", "--net", "none"], ["run", "--rm", "--net", "none", "--init"]])
def test_the_command_starts_with_no_signal_ignored(minirt, args):
    """Started from a background job (SIGINT, SIGQUIT ignored) by a Python process (SIGPIPE
    ignored), the container's command still starts with every signal at its default, as in
    Docker (SigIgn: 0), and its shell can trap SIGINT."""
    r = subprocess.run(minirt.argv(*args, "--", "grep", "SigIgn", "/proc/self/status"), env=minirt.env,
                       capture_output=True, text=True, timeout=60, preexec_fn=_ignore_int_quit_pipe)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["SigIgn:", "0000000000000000"]
    script = 'trap "echo got-INT; exit 7" INT; echo ready; while :; do sleep 0.05; done'
    p = minirt.popen("run", "--rm", "--net", "none", "--", "sh", "-c", script, preexec_fn=_ignore_int_quit_pipe)
    wait_line(p, "ready")
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=20) == 7


def _signal_bits(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line.split()[1] for line in f if line.startswith(field + ":")), 16)


def _pending(pid: int, sig: int) -> bool:
    """`sig` is pending for the process (shared) or its main thread."""
    bit = 1 << (sig - 1)
    return bool((_signal_bits(pid, "ShdPnd") | _signal_bits(pid, "SigPnd")) & bit)


def test_pid1_without_handler_ignores_sigterm_but_init_forwards_it(minirt):
    # Without --init the kernel drops SIGTERM for a pid namespace's init that has no handler.
    # The shell traps USR1 only. minirt relays signals in order, one at a time (sigwaitinfo):
    # once it has taken the TERM, a USR1 sent after it is relayed after it, so the shell's
    # answer to USR1 proves the TERM reached it and was dropped, with no sleep to guess by.
    p = minirt.popen("run", "--rm", "--", "sh", "-c", 'trap "echo usr1" USR1; echo up; while :; do sleep 0.05; done')
    wait_line(p, "up")
    child = container_pid(p)
    assert not _signal_bits(child, "SigCgt") & (1 << (signal.SIGTERM - 1))  # no handler for TERM
    p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 10
    while _pending(p.pid, signal.SIGTERM):  # until minirt has taken it
        assert time.monotonic() < deadline, "minirt never took the SIGTERM"
        time.sleep(0.005)
    p.send_signal(signal.SIGUSR1)
    wait_line(p, "usr1")
    assert p.poll() is None and os.path.exists(f"/proc/{child}")
    p.send_signal(signal.SIGKILL)  # minirt dies; pdeathsig takes the container with it
    p.wait(timeout=10)
    # With --init, sleep is PID 2 and dies of the forwarded SIGTERM: 128 + 15.
    p = minirt.popen("run", "--rm", "--init", "--", "sh", "-c", "echo up; exec sleep 60")
    wait_line(p, "up")
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=20) == 143


def test_minirt_killed_takes_the_container_with_it(minirt):
    p = minirt.popen("run", "--", "sh", "-c", "echo up; sleep 60")
    wait_line(p, "up")
    child = container_pid(p)
    p.kill()
    p.wait(timeout=10)
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{child}") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not os.path.exists(f"/proc/{child}")


def test_init_is_pid1_and_reaps_orphans(minirt):
    # an orphan (its parent subshell exits at once), killed by the shell: it becomes a zombie
    # whose parent is the reaper; its /proc entry goes only when the reaper has waited for it
    script = ("echo $$; (sleep 30 & echo $! > /tmp/orphan); o=$(cat /tmp/orphan); kill $o; "
              "while [ -e /proc/$o ]; do sleep 0.01; done; ps -o pid,stat,comm")  # fmt: skip
    r = minirt("run", "--rm", "--init", "--", "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "2"  # the command is PID 2, the reaper PID 1
    procs = [line.split() for line in lines[2:]]
    assert procs[0][0] == "1"
    assert not [p for p in procs if p[1].startswith("Z")], lines


@pytest.mark.parametrize(
    "args, message",
    [
        (["--bogus", "--", "true"], "minirt: unknown flag: --bogus"),
        (["--rootfs", "/no/such/rootfs", "--", "true"], "minirt: rootfs /no/such/rootfs: no such directory"),
        (["-v", "/no/such/dir:/data", "--", "true"], "minirt: volume /no/such/dir:/data: host path /no/such/dir does not exist"),
        (["-v", "relative:/data", "--", "true"], "minirt: volume 'relative:/data': host path must be absolute"),
        (["--cap-add", "nosuchcap", "--", "true"], "minirt: capability 'nosuchcap': unknown capability"),
        (["--net", "bogus", "--", "true"], "minirt: network 'bogus': no such network (create it with `minirt network create`)"),
        (["--name", "x", "--", "true"], "minirt: name 'x': invalid container name, only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"),
    ],
)
def test_bad_input_is_one_line_and_125_and_leaves_nothing(minirt, args, message):
    before = kernel.mounts(minirt.host.pid)
    r = minirt("run", "--rm", *args)
    assert r.returncode == 125
    assert r.stderr == message + "\n"
    assert minirt.containers() == []
    assert kernel.mounts(minirt.host.pid) == before


def test_not_root_is_refused(minirt):
    from tests.conftest import MINIRT

    r = subprocess.run(
        # A user namespace without a uid map makes us "nobody" to geteuid() while the files
        # (the pyenv interpreter under /root) stay readable; setpriv to 65534 could not load
        # libpython at all.
        [*minirt.host.prefix(), "unshare", "--user", "--", MINIRT, "run", "--rm", "--", "true"],
        env=minirt.env, capture_output=True, text=True, timeout=30,
    )
    assert r.returncode == 125
    assert r.stderr == "minirt: must run as root (creating namespaces needs CAP_SYS_ADMIN)\n"




def test_name_conflict(minirt):
    assert minirt("run", "--name", "web1", "--", "true").returncode == 0
    r = minirt("run", "--rm", "--name", "web1", "--", "true")
    assert r.returncode == 125
    assert r.stderr.startswith("minirt: name 'web1': already in use by container ")
    assert len(minirt.containers()) == 1


@pytest.mark.parametrize("point", ["after-record", "after-spawn", "after-exec"])
def test_failure_at_each_step_leaves_nothing(minirt, point):
    before = kernel.mounts(minirt.host.pid)
    r = minirt("run", "--name", "faulty", "--", "sleep", "5", env={"MINIRT_FAULT": f"fail:{point}"})
    assert r.returncode == 125
    assert r.stderr == f"minirt: injected fault at {point}\n"
    assert minirt.containers() == []
    assert os.listdir(f"{minirt.root}/names") == []
    assert kernel.mounts(minirt.host.pid) == before
    # the dismissed sentinel exits on its own, a moment after minirt returns
    deadline = time.monotonic() + 5
    while kernel.minirt_processes({os.getpid(), os.getppid()}, root=minirt.root) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not kernel.minirt_processes({os.getpid(), os.getppid()}, root=minirt.root)


def _read_until(fd: int, needle: bytes, timeout: float = 10) -> bytes:
    """Read a pty until `needle` shows up, or until it closes (EIO) if it never does."""
    out = b""
    deadline = time.monotonic() + timeout
    while needle not in out:
        left = deadline - time.monotonic()
        assert left > 0, f"timed out waiting for {needle!r}; got {out!r}"
        r, _, _ = select.select([fd], [], [], left)
        if r:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    return out


def _wait_exit(pid: int, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.02)
    raise AssertionError("minirt did not exit")


def test_interactive_shell_with_job_control_through_a_pty(minirt):
    pid, fd = pty.fork()
    if pid == 0:  # child: the pty is our controlling terminal, as in a user's shell
        try:
            argv = minirt.argv("run", "--rm", "--", "/bin/sh")
            os.execvpe(argv[0], argv, minirt.env)
        finally:
            os._exit(127)
    try:
        _read_until(fd, b"# ")
        os.write(fd, b"sleep 30 &\n")
        _read_until(fd, b"# ")
        os.write(fd, b"jobs\n")
        assert b"Running" in _read_until(fd, b"# ")
        shell_group = os.tcgetpgrp(fd)  # the terminal's foreground group (TIOCGPGRP on the master)
        os.write(fd, b"fg %1\n")
        deadline = time.monotonic() + 10
        while os.tcgetpgrp(fd) == shell_group:  # until the shell has handed the terminal to the job
            assert time.monotonic() < deadline, "fg never made the job the foreground group"
            time.sleep(0.005)
        os.write(fd, b"\x1a")  # ^Z stops the foreground job, not the shell
        assert b"Stopped" in _read_until(fd, b"# ")
        os.write(fd, b"kill -9 %1\n")
        _read_until(fd, b"# ")
        os.write(fd, b"wait; echo pid=$$\n")  # the killed job reaped, then the shell's pid
        assert b"pid=1" in _read_until(fd, b"pid=1")
        os.write(fd, b"exit 5\n")
        assert _wait_exit(pid, timeout=10) == 5
        assert minirt.containers() == []
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(fd)
