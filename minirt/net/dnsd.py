"""Name resolution on a user-defined network: a small DNS responder per network (minirt-dns).

Runs in: two places.
- ensure() and stop(): the minirt parent, host netns, on the start-up path of a container on a
  DNS-enabled network (only there: the default network never imports this module) and in
  `minirt network rm`.
- main(): the responder itself, a detached process (setsid, double fork, a fresh interpreter
  whose command line reads `... minirt.net.dnsd ... minirt-dns <network> <fds>`, with
  MINIRT_ROOT in its environment, where the leak guard of the tests looks), in the host
  netns, listening on the network's gateway address, UDP and TCP port 53.

This is Podman's aardvark-dns shape (one responder per network, on the gateway address), not
Docker's embedded resolver at 127.0.0.11 inside every container, which needs per-container
DNAT/SNAT rules in the container's netns (docs/networking.md, "Docker's behaviour"). The
container's resolv.conf names the gateway (net/dns.py).

What it answers (the data is read live from minirt's state, so containers started after the
asking one resolve; Docker's resolver answers the same forms, e.g. `cb`, `cb.n1` and cb's short
id: docs/networking.md, "Docker's behaviour"):

    <name>, <name>.<network>, <alias>, <alias>.<network>, <id12>   ->  A <address>

    $MINIRT_ROOT/networks/<network>/leases/<ip>   owner {container, pid, start_time}  (net/ipam.py)
    $MINIRT_ROOT/networks/<network>/leases6/<ip>  the same for IPv6 (dual-stack networks)
    $MINIRT_ROOT/containers/<id>/state.json       name, config.aliases, config.dns
    $MINIRT_ROOT/networks/<network>/dns.pid       "<pid> <start_time>" of the running responder
    $MINIRT_ROOT/networks/<network>/dns.log       the responder's errors

- The name table is rebuilt when a leases directory changes (its mtime) and at least every
  second; a name is answered only while the lease's owner (pid + start time) is alive.
- Matching is case-insensitive (RFC 4343); several containers with one alias give several A
  records. AAAA for a known name without a v6 address, and any other type, is an empty
  NOERROR (NODATA), so a stub resolver asking A and AAAA in parallel does not fail. TTL is
  5 s (Docker's embedded resolver says 600; our addresses change with each restart).
- Unknown names under `.<network>` are NXDOMAIN (we are the authority for that zone). Any
  other unknown name is forwarded, as Docker and aardvark-dns do, to the asking container's
  --dns servers if it has any, else to the host's nameservers read from /etc/resolv.conf when
  the responder starts (loopback ones work: we are in the host netns), or to the list in
  $MINIRT_DNS_UPSTREAM (comma-separated; set but empty means: forward nothing, answer
  REFUSED, which is what the tests use). Forwarding runs in a thread per query (at most 64 at
  once, 2 s per upstream), so a slow upstream never holds local answers back; a failed
  forward is SERVFAIL.
- On an --internal network nothing is forwarded (REFUSED): the responder lives in the host
  netns, so forwarding would give the network the way out it must not have.
- Queries whose source is outside the network's subnet are REFUSED: another network's
  containers can reach this gateway (host input is not filtered), but not its names.

Lifecycle (never leaks): the first container to attach starts the responder, under the
network's lock and after its own lease exists. The parent binds both sockets itself before
forking, so they are ready before the container runs: a query sent while the responder is
still starting waits in the socket's queue. The responder exits by itself when the network has
had no live lease for IDLE seconds; it decides under the same lock and removes dns.pid before
letting go, so a starting container either sees it alive (and its lease keeps it alive) or
starts a new one. `minirt network rm` kills it (stop()).

Be aware: one question per message; no EDNS0 (we answer at most 512 bytes of A records: ~30
addresses for a name); no PTR records; TCP queries are forwarded over UDP.
"""

import os
import time

from minirt import jsonenc, procfs
from minirt.net import inet

# `socket` (enum, selectors: ~13 ms) is imported by the responder only; ensure(), on the
# container start-up path, binds with the C module _socket as net/bridge.py does.

TTL = 5
IDLE = 1.5  # seconds without a live lease before the responder exits
REFRESH = 1.0  # rebuild the name table at least this often
FORWARD_TIMEOUT = 2.0
MAX_FORWARDS = 64


# ---------------------------------------------------------------------------------------------
# The name table (pure apart from reading state files)


def _owners(directory: str) -> dict[str, dict]:
    """address -> owner of every complete lease in a leases directory (v4 or v6)."""
    return dict(_each_owner(directory))


def _each_owner(directory: str):
    """(address, owner) of the complete leases in a leases directory, read one at a time, so a
    caller that stops at the first one it wants reads one file, not the network's thousand."""
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    for name in names:
        if name.startswith(".") or name == "last_reserved":
            continue
        try:
            with open(f"{directory}/{name}", "rb") as f:
                owner = jsonenc.loads(f.read().decode())
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        if isinstance(owner, dict) and isinstance(owner.get("container"), str):
            yield name, owner


# (record type, leases subdirectory): adding a family is one line here
FAMILIES = ((1, "leases"), (28, "leases6"))


class Entry:
    __slots__ = ("cid", "pid", "start_time", "addrs", "dns")

    def __init__(self, cid: str, pid: int, start_time: int, dns: list):
        self.cid, self.pid, self.start_time, self.dns = cid, pid, start_time, dns
        self.addrs: dict[int, list[str]] = {}

    def alive(self) -> bool:
        return type(self.pid) is int and procfs.is_alive(self.pid, self.start_time)


def build_table(root: str, network: str) -> tuple[dict[str, list[Entry]], dict[str, Entry]]:
    """(name -> entries, address -> entry) for the containers holding a lease on `network`.
    Names are lowercased; dead owners are kept out."""
    netdir = f"{root}/networks/{network}"
    by_cid: dict[str, Entry] = {}
    for rtype, sub in FAMILIES:
        for addr, owner in _owners(f"{netdir}/{sub}").items():
            cid = owner["container"]
            e = by_cid.get(cid)
            if e is None:
                e = by_cid[cid] = Entry(cid, owner.get("pid"), owner.get("start_time"), [])
            e.addrs.setdefault(rtype, []).append(addr)
    names: dict[str, list[Entry]] = {}
    by_addr: dict[str, Entry] = {}
    for cid, e in by_cid.items():
        if not e.alive():
            continue
        try:
            with open(f"{root}/containers/{cid}/state.json") as f:
                rec = jsonenc.loads(f.read())
        except (OSError, ValueError):
            continue
        cfg = rec.get("config") or {}
        e.dns = cfg.get("dns") or []
        labels = {rec.get("name") or "", cid[:12]}
        # --network-alias belongs to the network the container started on; `network connect
        # --alias` ones to the network they were given for (Docker: aliases are per endpoint)
        if (cfg.get("network") or "minirt") == network:
            labels.update(cfg.get("aliases") or [])
        for endpoint in rec.get("connected") or []:
            if endpoint.get("network") == network:
                labels.update(endpoint.get("aliases") or [])
        for label in labels:
            if label:
                for key in (label.lower(), f"{label}.{network}".lower()):
                    names.setdefault(key, []).append(e)
        for addrs in e.addrs.values():
            for a in addrs:
                by_addr[a] = e
    return names, by_addr


class Table:
    """build_table() cached until a leases directory changes or REFRESH passes."""

    def __init__(self, root: str, network: str):
        self.root, self.network = root, network
        self.sig = None
        self.built = 0.0
        self.names: dict[str, list[Entry]] = {}
        self.by_addr: dict[str, Entry] = {}

    def _signature(self):
        sig = []
        for _rtype, sub in FAMILIES:
            try:
                st = os.stat(f"{self.root}/networks/{self.network}/{sub}")
                sig.append((st.st_mtime_ns, st.st_ino))
            except FileNotFoundError:
                sig.append(None)
        return tuple(sig)

    def refresh(self) -> None:
        sig = self._signature()
        now = time.monotonic()
        if sig != self.sig or now - self.built >= REFRESH:
            self.names, self.by_addr = build_table(self.root, self.network)
            self.sig, self.built = sig, now

    def lookup(self, name: str) -> list[Entry]:
        self.refresh()
        return [e for e in self.names.get(name, ()) if e.alive()]


def answer_local(q, table: Table, network: str) -> bytes | None:
    """The answer from the network's own names, or None: forward it."""
    from minirt.net import dnswire as w

    if q.qclass != w.CLASS_IN:
        return w.response(q, w.NOTIMP, aa=False)
    entries = table.lookup(q.name)
    if entries:
        answers = []
        for rtype, conv in ((w.A, w.a_rdata), (w.AAAA, w.aaaa_rdata)):
            if q.qtype in (rtype, 255):  # 255: ANY
                for e in entries:
                    answers += [(rtype, conv(a)) for a in e.addrs.get(rtype, ())]
        return w.response(q, w.NOERROR, answers[:30], ttl=TTL)
    if q.name == network.lower() or q.name.endswith("." + network.lower()):
        return w.response(q, w.NXDOMAIN)
    return None


# ---------------------------------------------------------------------------------------------
# The responder process


def read_upstreams(env: dict, resolv_conf: str = "/etc/resolv.conf") -> list[str]:
    """$MINIRT_DNS_UPSTREAM when set (empty: none), else the host's nameservers."""
    if "MINIRT_DNS_UPSTREAM" in env:
        return [s for s in env["MINIRT_DNS_UPSTREAM"].replace(",", " ").split() if s]
    try:
        with open(resolv_conf) as f:
            text = f.read()
    except OSError:
        return []
    return [fs[1] for fs in (line.split() for line in text.splitlines()) if fs[:1] == ["nameserver"] and len(fs) > 1]


class Responder:
    def __init__(self, root: str, network: str, udp, tcp, upstreams: list[str]):
        import threading

        from minirt.net.netrecord import load

        self.net = load(root, network)
        self.root, self.network = root, network
        self.udp, self.tcp = udp, tcp
        self.upstreams = [u for u in upstreams if u != self.net.gateway]  # never forward to ourselves
        # an --internal network has no way out: its names are answered, nothing is forwarded
        # (the responder sits in the host netns, so forwarding would be a way out)
        self.forward = not self.net.internal
        self.table = Table(root, network)
        self.forwards = threading.BoundedSemaphore(MAX_FORWARDS)
        self.threading = threading

    def handle(self, data: bytes, src: str, reply, inline: bool = False) -> None:
        """Answer one message; reply(bytes) sends the answer, from a forwarding thread unless
        `inline` (a TCP client's own thread: it forwards itself, then reads the next query)."""
        from minirt.net import dnswire as w

        try:
            q = w.parse_query(data)
        except w.FormatError:
            out = w.error_response(data, w.FORMERR)
            if out:
                reply(out)
            return
        if not inet.contains(self.net.subnet, src):
            reply(w.response(q, w.REFUSED, aa=False))
            return
        out = answer_local(q, self.table, self.network)
        if out is not None:
            reply(out)
            return
        sender = self.table.by_addr.get(src)
        upstreams = ((sender.dns if sender and sender.dns else None) or self.upstreams) if self.forward else []
        if not upstreams:
            reply(w.response(q, w.REFUSED, aa=False))
            return
        if inline:
            self.forwards.acquire()
            self._forward(data, q, upstreams, reply)
            return
        if not self.forwards.acquire(blocking=False):
            reply(w.response(q, w.SERVFAIL, aa=False))
            return
        t = self.threading.Thread(target=self._forward, args=(data, q, upstreams, reply), daemon=True)
        t.start()

    def _forward(self, data: bytes, q, upstreams: list[str], reply) -> None:
        import socket

        from minirt.net import dnswire as w

        try:
            for up in upstreams:
                try:
                    family = socket.AF_INET6 if ":" in up else socket.AF_INET
                    with socket.socket(family, socket.SOCK_DGRAM) as s:
                        s.settimeout(FORWARD_TIMEOUT)
                        s.connect((up, 53))
                        s.send(data)
                        deadline = time.monotonic() + FORWARD_TIMEOUT
                        while time.monotonic() < deadline:
                            got = s.recv(65535)
                            if len(got) >= 12 and got[:2] == data[:2]:
                                reply(got)
                                return
                except OSError:
                    continue
            reply(w.response(q, w.SERVFAIL, aa=False, ra=True))
        finally:
            self.forwards.release()

    def _tcp_client(self, conn, src: str) -> None:
        import struct

        def reply(out: bytes) -> None:
            try:
                conn.sendall(struct.pack("!H", len(out)) + out)
            except OSError:
                pass

        try:
            conn.settimeout(5)
            while True:
                head = _recv_exact(conn, 2)
                if not head:
                    return
                data = _recv_exact(conn, struct.unpack("!H", head)[0])
                if data is None:
                    return
                self.handle(data, src, reply, inline=True)
        except OSError:
            pass
        finally:
            conn.close()

    def any_live_lease(self) -> bool:
        netdir = f"{self.root}/networks/{self.network}"
        for _rtype, sub in FAMILIES:
            for _address, owner in _each_owner(f"{netdir}/{sub}"):  # the first live one is enough
                if procfs.is_alive(owner.get("pid") or 0, owner.get("start_time")):
                    return True
        return False

    def serve(self) -> None:
        import select

        last_live = time.monotonic()
        next_check = 0.0
        while True:
            ready, _, _ = select.select([self.udp, self.tcp], [], [], 0.5)
            for s in ready:
                try:
                    if s is self.udp:
                        data, addr = self.udp.recvfrom(65535)
                        self.handle(data, addr[0], lambda out, a=addr: self.udp.sendto(out, a))
                    else:
                        conn, addr = self.tcp.accept()
                        self.threading.Thread(target=self._tcp_client, args=(conn, addr[0]), daemon=True).start()
                except OSError as e:
                    _log(f"{s.type.name}: {e}")
            now = time.monotonic()
            if now < next_check:
                continue
            next_check = now + 0.5
            if self.any_live_lease():
                last_live = now
            elif now - last_live >= IDLE and self._exit_if_idle():
                return

    def _exit_if_idle(self) -> bool:
        """Under the network's lock: no live lease -> remove dns.pid, close the sockets and
        exit (the lock is released by the exit, so the next starter finds the port free)."""
        from minirt.net import ipam

        netdir = f"{self.root}/networks/{self.network}"
        fd = ipam._lock(netdir, create=False)
        if fd is not None and self.any_live_lease():
            os.close(fd)
            return False
        if read_pid(netdir) == (os.getpid(), procfs.start_time(os.getpid())):
            try:
                os.unlink(f"{netdir}/dns.pid")
            except FileNotFoundError:
                pass
        self.udp.close()
        self.tcp.close()
        os._exit(0)


def _recv_exact(conn, n: int) -> bytes | None:
    buf = b""
    while len(buf) < n:
        chunk = conn.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def _log(message: str) -> None:
    os.write(2, f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} minirt-dns: {message}\n".encode())


def main(argv: list[str]) -> None:
    """minirt-dns NETWORK UDP_FD TCP_FD, $MINIRT_ROOT: serve until idle (ensure() execs this)."""
    import signal
    import socket

    _tag, network, ufd, tfd = argv
    root = os.environ["MINIRT_ROOT"]
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        udp = socket.socket(fileno=int(ufd))
        tcp = socket.socket(fileno=int(tfd))
        Responder(root, network, udp, tcp, read_upstreams(dict(os.environ))).serve()
    except BaseException as e:  # noqa: BLE001 - log, never a traceback on a closed terminal
        _log(f"exiting: {e!r}")
    os._exit(0)


# ---------------------------------------------------------------------------------------------
# Starting and stopping it (minirt parent)


def read_pid(netdir: str) -> tuple[int, int | None]:
    return procfs.read_pid_file(f"{netdir}/dns.pid")


def running(netdir: str) -> int | None:
    pid, started = read_pid(netdir)
    return pid if procfs.is_alive(pid, started) else None


def ensure(root: str, net) -> None:
    """The network's responder runs (start it if not), its sockets bound on the gateway.

    Called after this container's lease exists, under the network's lock (see the module
    docstring for why that cannot race the responder's exit). Sockets are bound here, before
    the container runs, so its first query cannot find the port closed."""
    import _socket

    from minirt import explain
    from minirt.errors import NetworkError
    from minirt.net import ipam

    fd = ipam._lock(net.dir, create=not explain.dry)
    try:
        if running(net.dir):
            return
        if explain.dry:  # no sockets bound, no process: the line, with the pid it would get
            explain.cmd(f"# dns: minirt-dns for network {net.name} listening on {net.gateway}:53 (udp, tcp), "
                        f"pid {explain.DNS_PID}")  # fmt: skip
            return
        udp = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
        tcp = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        try:
            try:
                udp.bind((net.gateway, 53))
                tcp.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
                tcp.bind((net.gateway, 53))
                tcp.listen(64)
            except OSError as e:
                raise NetworkError(
                    f"network {net.name!r}: cannot serve DNS on {net.gateway}:53 ({e.strerror}); "
                    "is another DNS server bound to all addresses (dnsmasq, named)?"
                ) from None
            pid = _spawn(root, net, udp.fileno(), tcp.fileno())
        finally:
            udp.close()
            tcp.close()
        started = procfs.start_time(pid)
        if started is None:
            raise NetworkError(f"network {net.name!r}: the DNS responder died at start (see {net.dir}/dns.log)")
        tmp = f"{net.dir}/.dns.pid.{os.getpid()}.tmp"
        with open(tmp, "w") as f:
            f.write(f"{pid} {started}\n")
        os.replace(tmp, f"{net.dir}/dns.pid")
        explain.cmd(f"# dns: minirt-dns for network {net.name} listening on {net.gateway}:53 (udp, tcp), pid {pid}")
    finally:
        if fd is not None:
            os.close(fd)


def _spawn(root: str, net, ufd: int, tfd: int) -> int:
    """Double fork + setsid + exec a fresh interpreter running main(); returns its pid. The
    intermediate child exits at once, so the responder is nobody's child but init's."""
    import signal
    import sys

    import minirt

    site = os.path.dirname(os.path.dirname(minirt.__file__))
    code = f"import sys; sys.path.insert(0, {site!r}); from minirt.net.dnsd import main; main(sys.argv[1:])"
    argv = [sys.executable, "-S", "-c", code, "minirt-dns", net.name, str(ufd), str(tfd)]
    env = dict(os.environ, MINIRT_ROOT=os.path.abspath(root))  # it runs in /
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setsid()
            gpid = os.fork()
            if gpid == 0:
                signal.pthread_sigmask(signal.SIG_SETMASK, [])  # minirt blocks what it waits for
                for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE):
                    signal.signal(sig, signal.SIG_DFL)
                devnull = os.open("/dev/null", os.O_RDWR)
                log = os.open(f"{net.dir}/dns.log", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
                os.dup2(devnull, 0)
                os.dup2(devnull, 1)
                os.dup2(log, 2)
                keep = sorted((ufd, tfd))
                os.closerange(3, keep[0])
                os.closerange(keep[0] + 1, keep[1])
                os.closerange(keep[1] + 1, 1 << 16)
                os.chdir("/")  # hold no one's working directory (a mount) busy
                os.set_inheritable(ufd, True)
                os.set_inheritable(tfd, True)
                os.execve(argv[0], argv, env)
            os.write(w, str(gpid).encode())
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 32)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    if not data:
        from minirt.errors import NetworkError

        raise NetworkError(f"network {net.name!r}: could not start the DNS responder")
    return int(data)


def stop(netdir: str) -> None:
    """Kill the network's responder, if any, and wait until it is gone (`network rm`)."""
    import signal

    from minirt import explain

    pid = running(netdir)
    if pid:
        explain.cmd(f"kill {pid}  # minirt-dns")
        if explain.dry:
            return
        for sig, wait in ((signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0)):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while running(netdir) and time.monotonic() < deadline:
                time.sleep(0.01)
            if not running(netdir):
                break
    try:
        os.unlink(f"{netdir}/dns.pid")
    except FileNotFoundError:
        pass
