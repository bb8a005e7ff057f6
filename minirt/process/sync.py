"""Parent <-> container-init handshake.

One SOCK_SEQPACKET socketpair (runc libcontainer/sync_unix.go: no partial reads, one message
per packet). Each step waits for exactly one named message; anything else is a protocol
error. The child's end is close-on-exec, so EOF after EXEC means execve() succeeded (CPython's
subprocess learns of exec failure through a CLOEXEC pipe the same way).

    child (PID 1 of a new pid namespace)        parent (host namespaces)
    ------------------------------------        ------------------------
    [user namespace only:]                      write uid_map, gid_map
    [chdir(container dir)]            <-------  USERNS + fds: idmapped rootfs, -v trees
    [setresgid/setresuid(0)]
    pdeathsig(SIGKILL); unshare(mnt|uts|ipc|net)
                                      <-------  CGROUP {version, dirs} (sent early: the parent
                                                made the cgroup and moved us in while we imported)
    NS_READY                          ------->  open /proc/<pid>/ns/net, set up the network
    lo up; wait for CGROUP;
    [unshare(CLONE_NEWCGROUP)]
    mounts, pivot_root                          (both sides work in parallel here)
                                      <-------  NET_READY {address, gateway, mac, resolv_conf}
    /etc files, hostname,
    resolve argv[0] (126/127),
    capabilities, no_new_privs
    EXEC, seccomp filter, execve      ------->  expect EXEC, then EOF => running
    ERROR {message, exit_code}        ------->  raise ExecError(message, exit_code)

A packet is the message type, optionally followed by NUL and a JSON payload, encoded and
parsed by minirt.jsonenc (json's C routines without importing json: ~8 ms saved). ERROR
is packed without json ("error\0<exit code>\0<message>") because the child may report it
after pivot_root, where no new module can be imported.
"""

# _socket, not socket: socket.py builds IntEnums at import (enum costs ~5 ms of our start-up).
import _socket
import sys

from minirt import jsonenc
from minirt.errors import EXIT_RUNTIME, ExecError, InitError

_BYTEORDER = sys.byteorder  # SCM_RIGHTS carries C ints in the machine's order
NS_READY, CGROUP, NET_READY, EXEC, ERROR = "ns-ready", "cgroup", "net-ready", "exec", "error"
USERNS = "userns"  # user namespaces only: maps written; carries the detached mount fds
MAX_MSG = 65536


class Channel:
    def __init__(self, sock: _socket.socket):
        self.sock = sock

    @classmethod
    def pair(cls) -> tuple["Channel", "Channel"]:
        # socketpair() fds are close-on-exec (PEP 446): the child's end closing at execve is
        # the "exec succeeded" signal.
        a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
        return cls(a), cls(b)

    def close(self) -> None:
        self.sock.close()

    def send(self, kind: str, **payload: object) -> None:
        data = kind.encode()
        if payload:
            data += b"\0" + jsonenc.dumps(payload).encode()
        try:
            self.sock.send(data)
        except (BrokenPipeError, ConnectionResetError, ConnectionRefusedError):
            # The peer is gone; what it said before going (an ERROR) is still queued for us,
            # and the next recv() reports it, or EOF.
            pass

    def send_fds(self, kind: str, fds: list[int], **payload: object) -> None:
        """A message with file descriptors attached (SCM_RIGHTS): the receiver gets its own
        copies, the sender still closes its ones."""
        data = kind.encode()
        if payload:
            data += b"\0" + jsonenc.dumps(payload).encode()
        # ints packed by hand: the array module imports collections.abc at load (~5 ms here)
        packed = b"".join(fd.to_bytes(4, _BYTEORDER, signed=True) for fd in fds)
        try:
            self.sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, packed)])
        except (BrokenPipeError, ConnectionResetError, ConnectionRefusedError):
            pass  # as in send(): the peer's ERROR, or EOF, is what the next recv() reports

    def expect_fds(self, kind: str, count: int) -> tuple[dict, list[int]]:
        """expect() for a message sent by send_fds; the fds arrive close-on-exec."""
        data, anc, _, _ = self.sock.recvmsg(MAX_MSG, _socket.CMSG_SPACE(count * 4), _socket.MSG_CMSG_CLOEXEC)
        fds = []
        for level, typ, raw in anc:
            if level == _socket.SOL_SOCKET and typ == _socket.SCM_RIGHTS:
                fds += [int.from_bytes(raw[i : i + 4], _BYTEORDER, signed=True) for i in range(0, len(raw) - 3, 4)]
        if not data:
            raise InitError(f"container process exited before {kind}")
        got, _, raw = data.partition(b"\0")
        if got.decode() != kind:
            for fd in fds:
                import os

                os.close(fd)
            raise InitError(f"protocol error: expected {kind}, got {got.decode(errors='replace')}")
        return (jsonenc.loads(raw.decode()) if raw else {}), list(fds)

    def recv(self) -> tuple[str, dict] | None:
        """The next message, or None at EOF (the peer closed its end, exited or exec'd)."""
        try:
            data = self.sock.recv(MAX_MSG)
        except ConnectionResetError:
            # The peer exited with a message of ours unread (e.g. NET_READY while it was failing):
            # the kernel reports ECONNRESET once (sock_error clears it), ahead of what the peer
            # queued for us before exiting. Read again to get that message, or EOF.
            data = self.sock.recv(MAX_MSG)
        if not data:
            return None
        kind, _, raw = data.partition(b"\0")
        payload = {}
        if kind == ERROR.encode():
            code, _, message = raw.partition(b"\0")
            return ERROR, {"exit_code": int(code or EXIT_RUNTIME), "message": message.decode(errors="replace")}
        if raw:
            payload = jsonenc.loads(raw.decode())
        return kind.decode(), payload

    def expect(self, kind: str) -> dict:
        msg = self.recv()
        if msg is None:
            raise InitError(f"container process exited before {kind}")
        got, payload = msg
        if got == ERROR:
            raise ExecError(payload["message"], payload["exit_code"])
        if got != kind:
            raise InitError(f"protocol error: expected {kind}, got {got}")
        return payload

    def expect_exec_done(self) -> None:
        """After EXEC: EOF means execve() succeeded; ERROR means it failed."""
        msg = self.recv()
        if msg is None:
            return
        got, payload = msg
        if got == ERROR:
            raise ExecError(payload["message"], payload["exit_code"])
        raise InitError(f"protocol error: expected end of stream after exec, got {got}")

    def report_error(self, message: str, exit_code: int) -> None:
        """Child side: best effort, the parent may already be gone."""
        try:
            self.sock.send(f"{ERROR}\0{exit_code}\0{message}".encode(errors="replace"))
        except OSError:
            pass

