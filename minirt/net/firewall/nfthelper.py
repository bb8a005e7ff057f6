"""A helper process with the nftables bindings already loaded, for `minirt run -p`.

Runs in: a process forked by the minirt parent once the container's init has about done its
imports (after the record and the sentinel, before the cgroup: runtime._start_nft_helper); it
lives until the container's ports are unpublished at teardown.

Why: importing the nftables bindings costs ~10 ms here (ctypes and the library; their json
import is deferred, libnft.py), a quarter of the start-up of a bridge container, and a
published port needs them on the critical path: the DNAT element can be written only once the
container's address is leased, and the container must not start before its ports work. So the
import runs in this helper on the other core while the parent builds the network, and the
publish transaction runs there while the parent builds the veth. Forked as the init finishes
its imports, so three processes do not share the 2 cores for long. The parent
still builds each nft script and prints it for --explain (firewall/ports.py); the helper only
runs it through libnftables and sends back rc and the error text. One script per request, so
each change is still one nft transaction.

Protocol (two pipes, both close-on-exec): request = u32 length + script (UTF-8); reply = i32 rc
+ u32 length + libnftables' error text; replies come in the order of the requests. A caller
may send a request and read its reply later (send/receive: `run -p` publishes while it builds
the veth). EOF on the request pipe (the parent closed it, or died) ends the helper. If the
helper is gone (killed, failed to import), the parent runs the script itself: the helper is
only ever a head start.

Ownership: the helper belongs to the process that started it. A process forked later (the
sentinel, the container's init) inherits the Python object but not the right to use it:
`run()` checks the pid, so such a process opens its own context instead of writing into fds it
has closed or reused.
"""

import os
import struct

_REQ = struct.Struct("=I")
_REP = struct.Struct("=iI")


class NftHelper:
    __slots__ = ("owner", "w", "r", "middle", "pending")

    def __init__(self, middle: int, w: int, r: int):
        self.owner, self.w, self.r, self.middle = os.getpid(), w, r, middle
        self.pending = 0  # requests sent whose reply is not read yet (send() without receive())

    def _reap_middle(self) -> None:
        """Reap the intermediate child of start()'s double fork. Not at start(): waiting for
        it there cost ~1.7 ms of `run -p`'s critical path; by the first request it is long gone."""
        if self.middle:
            try:
                os.waitpid(self.middle, 0)
            except ChildProcessError:
                pass
            self.middle = 0

    def send(self, script: str) -> bool:
        """Hand script to the helper and return at once (its reply is read by receive()), so the
        transaction runs on the other core while the caller goes on; False when it cannot."""
        if self.owner != os.getpid() or self.w < 0:
            return False
        self._reap_middle()
        data = script.encode()
        try:
            os.write(self.w, _REQ.pack(len(data)) + data)
        except OSError:
            self.close()
            return False
        self.pending += 1
        return True

    def receive(self) -> tuple[int, str, str] | None:
        """The reply to the oldest request sent: (rc, "", error text), or None when the helper
        is gone (then whether the script ran is unknown: callers run it again themselves, and
        our scripts are idempotent)."""
        if self.owner != os.getpid() or self.w < 0 or not self.pending:
            return None
        try:
            head = _read(self.r, _REP.size)
            if head is None:
                raise OSError("helper gone")
            rc, n = _REP.unpack(head)
            err = _read(self.r, n) if n else b""
            if err is None:
                raise OSError("helper gone")
        except OSError:
            self.close()
            return None
        self.pending -= 1
        return rc, "", err.decode(errors="replace")

    def cmd(self, script: str) -> tuple[int, str, str] | None:
        """Run script in the helper: (rc, "", error text), or None when the helper cannot."""
        while self.pending:  # a reply nobody waited for (a publish its rollback overtook)
            if self.receive() is None:
                return None
        if not self.send(script):
            return None
        return self.receive()

    def close(self) -> None:
        """End the helper: it exits on EOF by itself (idempotent; only in the process that
        started it). Not waited for: a process with libnftables mapped takes ~7 ms to exit,
        and it is not our child (start() double-forks), so it leaves no zombie either."""
        if self.owner != os.getpid() or self.w < 0:
            return
        self._reap_middle()
        os.close(self.w)
        os.close(self.r)
        self.w = self.r = -1
        self.pending = 0


def start() -> NftHelper:
    req_r, req_w = os.pipe()  # non-inheritable: the container's execve closes them (PEP 446)
    rep_r, rep_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            if os.fork():  # the helper is the grandchild: reparented, never our zombie
                os._exit(0)
            os.close(req_w)
            os.close(rep_r)
            devnull = os.open("/dev/null", os.O_RDWR)
            for fd in (0, 1, 2):  # hold no one's terminal, log pipe or `run -d` report pipe open
                os.dup2(devnull, fd)
            keep = sorted((req_r, rep_w))
            os.closerange(3, keep[0])
            os.closerange(keep[0] + 1, keep[1])
            os.closerange(keep[1] + 1, 1 << 16)
            _serve(req_r, rep_w)
        except BaseException:  # noqa: BLE001 - never return into minirt's code in a fork
            code = 1
        finally:
            os._exit(code)
    os.close(req_r)
    os.close(rep_w)
    return NftHelper(pid, req_w, rep_r)


def _serve(r: int, w: int) -> None:
    from minirt.net.firewall.libnft import context

    ctx = context()  # the import this helper exists for
    while True:
        head = _read(r, _REQ.size)
        if head is None:
            return
        (n,) = _REQ.unpack(head)
        script = _read(r, n)
        if script is None:
            return
        rc, _out, err = ctx.cmd(script.decode())
        data = (err or "").encode()
        os.write(w, _REP.pack(rc, len(data)) + data)


def _read(fd: int, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = os.read(fd, n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf
