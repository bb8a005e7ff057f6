"""minirt.procfs: process identity by pid + start time."""

import os
import signal

import pytest

from minirt import procfs


def _stat_start_time_by_hand(pid: int, comm: str) -> int:
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    prefix = f"{pid} ({comm}) "
    assert data.startswith(prefix), data
    return int(data[len(prefix) :].split()[19])  # fields 3.. -> field 22 is index 19


@pytest.fixture
def odd_child():
    """A child whose comm has spaces and parentheses: ') 1 2 (x' would fool a first-')' parser."""
    comm = "a) 1 2 (c"
    r, w = os.pipe()
    hold_r, hold_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.close(hold_w)
            with open("/proc/self/comm", "w") as f:
                f.write(comm)
            os.write(w, b"x")
            os.read(hold_r, 1)  # until the parent closes its end (or dies)
        finally:
            os._exit(0)
    os.close(w)
    os.close(hold_r)
    try:
        assert os.read(r, 1) == b"x"
        yield pid, comm
    finally:
        os.close(r)
        os.close(hold_w)
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass


def test_start_time_of_self_is_stable_int():
    a = procfs.start_time(os.getpid())
    b = procfs.start_time(os.getpid())
    assert isinstance(a, int)
    assert a == b
    assert a >= 0


def test_start_time_of_self_matches_proc_by_hand():
    with open("/proc/self/comm") as f:
        comm = f.read().rstrip("\n")
    assert procfs.start_time(os.getpid()) == _stat_start_time_by_hand(os.getpid(), comm)


def test_start_time_not_after_now():
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    ticks = os.sysconf("SC_CLK_TCK")
    assert procfs.start_time(os.getpid()) <= uptime * ticks + ticks


def test_comm_with_spaces_and_parentheses(odd_child):
    pid, comm = odd_child
    with open(f"/proc/{pid}/comm") as f:
        assert f.read() == comm + "\n"  # the setup really took
    st = procfs.start_time(pid)
    assert st == _stat_start_time_by_hand(pid, comm)
    assert st >= procfs.start_time(os.getpid())  # forked after us


def test_is_alive(odd_child):
    pid, _ = odd_child
    st = procfs.start_time(pid)
    assert procfs.is_alive(pid, st) is True
    assert procfs.is_alive(pid, st + 1) is False  # same pid, another process (pid reuse)
    assert procfs.is_alive(pid, None) is False


def test_reaped_child_is_gone():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status)
    assert procfs.start_time(pid) is None
    assert procfs.is_alive(pid, 0) is False


@pytest.mark.parametrize("pid", [0, -1, 2**22 + 1])
def test_no_such_pid(pid):
    assert procfs.start_time(pid) is None
    assert procfs.is_alive(pid, 0) is False
