"""minirt.process.sync: the parent <-> container-init protocol over a real SEQPACKET socketpair.

The "container" here is a plain forked child (no namespaces). Each child body runs under
os._exit: exit status 0 means its own assertions held."""

import os
import select

import pytest

from minirt.errors import EXIT_RUNTIME, ExecError, InitError
from minirt.process.sync import ERROR, EXEC, NET_READY, NS_READY, Channel


def fork_child(body):
    """Run body(child_channel) in a forked child; returns (parent_channel, pid)."""
    parent, child = Channel.pair()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            parent.close()
            body(child)
            code = 0
        except BaseException:  # noqa: BLE001 - reported through the exit status
            code = 2
        finally:
            os._exit(code)
    child.close()
    parent.sock.settimeout(10)  # a protocol bug must fail the test, not hang it
    return parent, pid


def reap(pid) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_socketpair_is_seqpacket_and_close_on_exec():
    a, b = Channel.pair()
    try:
        assert not os.get_inheritable(a.sock.fileno())
        assert not os.get_inheritable(b.sock.fileno())
        a.send(NS_READY)
        a.send(EXEC)
        assert b.recv() == (NS_READY, {})  # one message per packet, never merged
        assert b.recv() == (EXEC, {})
    finally:
        a.close()
        b.close()


def test_ns_ready():
    parent, pid = fork_child(lambda ch: ch.send(NS_READY))
    try:
        assert parent.expect(NS_READY) == {}
    finally:
        parent.close()
    assert reap(pid) == 0


def test_net_ready_payload_round_trip():
    net = {"address": "10.88.0.2", "prefixlen": 24, "hostname": "box", "dns": ["1.1.1.1"], "resolv_conf": "é\n",
           "nested": {"ok": True, "none": None, "f": 1.5}}  # fmt: skip

    def child(ch):
        got = ch.expect(NET_READY)
        assert got == net
        ch.send(NET_READY, **got)

    parent, pid = fork_child(child)
    try:
        parent.send(NET_READY, **net)
        assert parent.expect(NET_READY) == net
    finally:
        parent.close()
    assert reap(pid) == 0


def test_empty_payload_is_an_empty_dict():
    parent, pid = fork_child(lambda ch: ch.send(NET_READY))
    try:
        assert parent.expect(NET_READY) == {}
    finally:
        parent.close()
    assert reap(pid) == 0


def test_unexpected_message_is_a_protocol_error():
    parent, pid = fork_child(lambda ch: ch.send(EXEC))
    try:
        with pytest.raises(InitError, match="protocol error: expected ns-ready, got exec"):
            parent.expect(NS_READY)
    finally:
        parent.close()
    assert reap(pid) == 0


def test_child_closes_before_message():
    parent, pid = fork_child(lambda ch: ch.close())
    try:
        with pytest.raises(InitError, match="container process exited before ns-ready"):
            parent.expect(NS_READY)
    finally:
        parent.close()
    assert reap(pid) == 0


def test_child_exits_without_closing():
    parent, pid = fork_child(lambda ch: None)  # os._exit closes it
    try:
        with pytest.raises(InitError, match="exited before net-ready"):
            parent.expect(NET_READY)
    finally:
        parent.close()
    assert reap(pid) == 0


@pytest.mark.parametrize("code", [126, 127, 125])
def test_report_error_becomes_exec_error(code):
    msg = 'exec "nope": executable file not found in $PATH (é)'
    parent, pid = fork_child(lambda ch: ch.report_error(msg, code))
    try:
        with pytest.raises(ExecError) as ei:
            parent.expect(NS_READY)
    finally:
        parent.close()
    assert str(ei.value) == msg
    assert ei.value.exit_code == code
    assert reap(pid) == 0


def test_error_is_reported_at_any_step():
    def child(ch):
        ch.send(NS_READY)
        ch.expect(NET_READY)
        ch.report_error("mount /proc: permission denied", 125)

    parent, pid = fork_child(child)
    try:
        parent.expect(NS_READY)
        parent.send(NET_READY, address="10.0.0.2")
        with pytest.raises(ExecError, match="mount /proc: permission denied") as ei:
            parent.expect(EXEC)
        assert ei.value.exit_code == 125
    finally:
        parent.close()
    assert reap(pid) == 0


def test_error_message_may_contain_nul():
    parent, pid = fork_child(lambda ch: ch.report_error("a\0b", 126))
    try:
        with pytest.raises(ExecError) as ei:
            parent.expect(EXEC)
        assert str(ei.value) == "a\0b"
    finally:
        parent.close()
    assert reap(pid) == 0


def test_error_without_code_is_a_runtime_error():
    a, b = Channel.pair()
    try:
        a.sock.send(f"{ERROR}\0\0something broke".encode())
        assert b.recv() == (ERROR, {"exit_code": EXIT_RUNTIME, "message": "something broke"})
    finally:
        a.close()
        b.close()


def test_report_error_after_parent_is_gone_does_not_raise():
    a, b = Channel.pair()
    a.close()
    b.report_error("nobody listens", 127)  # best effort: no exception
    b.close()


def test_expect_exec_done_eof_is_success():
    def child(ch):
        ch.send(EXEC)
        ch.close()

    parent, pid = fork_child(child)
    try:
        parent.expect(EXEC)
        assert parent.expect_exec_done() is None
    finally:
        parent.close()
    assert reap(pid) == 0


def test_expect_exec_done_eof_comes_from_execve_itself():
    """The child's end is close-on-exec: EOF arrives while the exec'd program still runs."""
    parent, child = Channel.pair()
    pid = os.fork()
    if pid == 0:
        try:
            parent.close()
            child.send(EXEC)
            os.execv("/bin/sleep", ["sleep", "5"])
        finally:
            os._exit(127)
    child.close()
    parent.sock.settimeout(10)
    try:
        parent.expect(EXEC)
        assert parent.expect_exec_done() is None
        assert os.waitpid(pid, os.WNOHANG) == (0, 0)  # still running: EOF came from execve
        with open(f"/proc/{pid}/comm") as f:
            assert f.read() == "sleep\n"
    finally:
        parent.close()
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def test_expect_exec_done_error():
    def child(ch):
        ch.send(EXEC)
        ch.report_error('exec "/x": permission denied', 126)

    parent, pid = fork_child(child)
    try:
        parent.expect(EXEC)
        with pytest.raises(ExecError, match="permission denied") as ei:
            parent.expect_exec_done()
        assert ei.value.exit_code == 126
    finally:
        parent.close()
    assert reap(pid) == 0


def test_expect_exec_done_other_message_is_a_protocol_error():
    def child(ch):
        ch.send(EXEC)
        ch.send(NS_READY)

    parent, pid = fork_child(child)
    try:
        parent.expect(EXEC)
        with pytest.raises(InitError, match="expected end of stream after exec, got ns-ready"):
            parent.expect_exec_done()
    finally:
        parent.close()
    assert reap(pid) == 0


def test_error_reported_while_our_message_is_unread():
    def child(ch):
        # wait until NET_READY has arrived, but do not read it (a failure before expect(NET_READY))
        select.select([ch.sock], [], [], 10)
        ch.report_error("mount overlay: invalid argument", 125)

    parent, pid = fork_child(child)
    try:
        parent.send(NET_READY, address="10.0.0.2")
        assert reap(pid) == 0
        with pytest.raises(ExecError, match="mount overlay"):
            parent.expect(EXEC)
    finally:
        parent.close()



def test_error_reported_before_our_send():
    """The child failed and exited before we sent NET_READY: the send must not hide its ERROR."""
    parent, pid = fork_child(lambda ch: ch.report_error("mount /dev: no such device", 125))
    try:
        assert reap(pid) == 0  # gone before we send
        parent.send(NET_READY, address="10.0.0.2")
        with pytest.raises(ExecError, match="mount /dev: no such device") as ei:
            parent.expect(EXEC)
        assert ei.value.exit_code == 125
    finally:
        parent.close()


def test_send_to_a_vanished_child_then_expect_reports_its_exit():
    parent, pid = fork_child(lambda ch: None)
    try:
        assert reap(pid) == 0
        parent.send(NET_READY)
        with pytest.raises(InitError, match="exited before exec"):
            parent.expect(EXEC)
    finally:
        parent.close()
