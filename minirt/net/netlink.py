"""rtnetlink for the bridge driver: one transport, one ack loop, and the operations minirt makes.

Runs in: the minirt parent (and `network` commands), host network namespace; sockets for a
container's namespace are opened by switching this thread into it for one socket() call
(socket_in, netavark/CNI style).

Encoding is net/linkmsgs.py's: the messages a container's start needs (veth, link up, address,
default route) are pyroute2's, compiled once and filled per use, so the start-up path never
imports pyroute2; the rare ones (bridge creation, hairpin, delete, dumps) are built by pyroute2's
message classes with its package __init__ skipped (linkmsgs.messages()). What we do not use is
pyroute2's socket machinery, because of its cost on the start-up path (measured on our 2-core VMs):

    from pyroute2 import IPRoute                     150-185 ms  (package __init__: asyncio, NDB, ...)
    message classes only, package __init__ skipped    33-55 ms
    one request/ack on our own NETLINK_ROUTE socket    ~0.1 ms + kernel time

Rtnl sends the bytes itself and reads the kernel's acks in one loop (_ack), and change() turns
an errno into one NetworkError line naming the change.

--explain (STYLE 2.10): each operation prints its `ip ...` line, rendered by a pure render_*()
function from the operation's own arguments, *after* the kernel acked the change. An add that
finds its object already there (EEXIST) or a delete that finds it gone (ENODEV) changed nothing
and prints nothing. A socket in a container's netns carries `where` ("nsenter -t PID -n "),
which prefixes its lines.
Dry run (explain.dry): each operation prints its line and sends nothing. Whether the kernel
would have answered EEXIST/ENODEV (and so printed nothing) is found by looking first: a link is
looked up by name, an address in the link's address dump. A link the dry run "created" has
ifindex 0, and a socket for a namespace that does not exist yet is None: everything added
there is new.
Idempotence: ensure_bridge tolerates EEXIST (then checks the kind, as CNI ensureBridge);
add_address tolerates EEXIST; delete_link treats ENODEV as done.
"""

import _socket
import errno
import os
import struct

from minirt import explain
from minirt.errors import ConflictError, NetworkError
from minirt.net import inet, linkmsgs
from minirt.net.linkmsgs import (  # noqa: F401 (re-exported: the constants are part of this API)
    AF_INET, AF_INET6, IFF_UP, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NLMSG_DONE,
    NLMSG_ERROR, RT_TABLE_MAIN, RTM_DELLINK, RTM_GETLINK, RTM_GETROUTE, RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE,
    messages,
)

RTM_GETADDR = 22
ETH0_INDEX = 2  # a fresh netns holds only lo (1): the veth peer created into it gets 2
_HDR = struct.Struct("=IHHII")


# -- the `ip` line of each operation (pure) ------------------------------------------------------


def render_veth(host_ifname: str, peer_ifname: str, mtu: int, bridge: str, mac: str, netns) -> str:
    return (f"ip link add {host_ifname} mtu {mtu} master {bridge} up type veth "
            f"peer name {peer_ifname} mtu {mtu} address {mac} netns {netns}")  # fmt: skip


def render_bridge(name: str, mtu: int) -> str:
    return f"ip link add {name} mtu {mtu} up type bridge"


def render_up(ifname: str) -> str:
    return f"ip link set {ifname} up"


def render_hairpin(ifname: str) -> str:
    return f"ip link set {ifname} type bridge_slave hairpin on"


def render_delete(ifname: str) -> str:
    return f"ip link del {ifname}"


def render_address(ifname: str, address: str, prefixlen: int) -> str:
    if inet.version(address) == inet.V6:
        return f"ip -6 addr add {address}/{prefixlen} dev {ifname} nodad"
    return f"ip addr add {address}/{prefixlen} dev {ifname}"


def render_default_route(ifname: str, gateway: str) -> str:
    six = "-6 " if inet.version(gateway) == inet.V6 else ""
    return f"ip {six}route add default via {gateway} dev {ifname}"


class Rtnl:
    """One NETLINK_ROUTE socket in one network namespace; requests are synchronous.

    msgs: the compiled messages (linkmsgs.load(root) on the start-up path); None compiles them
    in memory on first use. where: what prefixes this socket's --explain lines."""

    def __init__(self, sock: "_socket.socket | None", msgs: dict | None = None, where: str = ""):
        self.sock = sock  # None: a dry run's namespace that does not exist yet (nothing in it)
        if sock is not None:
            self.sock.bind((0, 0))
        self.seq = 0
        self._msgs = msgs
        self.where = where

    @classmethod
    def host(cls, msgs: dict | None = None) -> "Rtnl":
        return cls(_socket.socket(_socket.AF_NETLINK, _socket.SOCK_DGRAM, 0), msgs)

    @classmethod
    def in_netns(cls, netns_fd: int, msgs: dict | None = None, where: str = "") -> "Rtnl":
        return cls(socket_in(netns_fd), msgs, where)

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()

    def _new(self, index) -> bool:
        """Dry run: the link is one the dry run made (index 0 or None), or lives in a namespace
        that does not exist yet: nothing is on it, so every add would change something."""
        return not index or self.sock is None

    @property
    def msgs(self) -> dict:
        if self._msgs is None:
            self._msgs = linkmsgs.compiled()
        return self._msgs

    # -- transport --------------------------------------------------------------------------

    def _send(self, buf: bytearray) -> int:
        self.seq += 1
        struct.pack_into("=I", buf, 8, self.seq)  # struct nlmsghdr { u32 len; u16 type, flags; u32 seq; ... }
        self.sock.send(buf)
        return self.seq

    def _ack(self, seq: int) -> int:
        """Wait for the kernel's answer to request `seq`: 0 (ack) or the errno it refused with."""
        while True:
            data = self.sock.recv(65536)
            for mtype, mseq, off, _length in split_messages(data):
                if mseq == seq and mtype == NLMSG_ERROR:
                    return error_code(data, off)

    def change(self, buf: bytearray, what: str, done_errno: int | None = None) -> bool:
        """Send one change and wait for its ack. True: the kernel made it; False: it answered
        `done_errno` (EEXIST for an add, ENODEV for a delete: already so, nothing changed).
        Any other errno is one NetworkError line naming `what`."""
        code = self._ack(self._send(buf))
        if code == 0:
            return True
        if code == done_errno:
            return False
        raise NetworkError(f"{what}: {os.strerror(code)}")

    def _explain(self, line: str) -> None:
        explain.cmd(self.where + line)

    def dump(self, msg, msg_type: int, cls, flags: int = NLM_F_DUMP) -> list:
        msg["header"]["type"] = msg_type
        msg["header"]["flags"] = flags | NLM_F_REQUEST
        msg.encode()
        seq = self._send(bytearray(msg.data))
        out = []
        while True:
            data = self.sock.recv(1 << 20)
            for mtype, mseq, off, length in split_messages(data):
                if mseq != seq:
                    continue
                if mtype == NLMSG_DONE:
                    return out
                if mtype == NLMSG_ERROR:
                    code = error_code(data, off)
                    if code:
                        raise OSError(code, os.strerror(code))
                    return out
                m = cls(data[off : off + length])
                m.decode()
                out.append(m)
            if not flags & NLM_F_DUMP and out:
                return out

    # -- links ------------------------------------------------------------------------------

    def link(self, ifname: str):
        """The link called ifname, or None."""
        if self.sock is None:
            return None
        ifinfmsg = messages()[0]
        m = ifinfmsg()
        m["attrs"] = [("IFLA_IFNAME", ifname)]
        try:
            found = self.dump(m, RTM_GETLINK, ifinfmsg, flags=0)
        except OSError as e:
            if e.errno == errno.ENODEV:
                return None
            raise NetworkError(f"look up link {ifname}: {e.strerror}") from None
        return found[0] if found else None

    def link_index(self, ifname: str) -> int | None:
        m = self.link(ifname)
        return m["index"] if m else None

    def create_veth(self, host_ifname: str, peer_ifname: str, mtu: int, master: int, mac: str, netns_fd: int, *,
                    bridge: str, pid: int, peer_index: int = 0) -> None:  # fmt: skip
        """The host end (enslaved to `master`, up) and its peer, created directly inside the
        netns of `netns_fd` (netavark's peer_opts.netns). bridge and pid name master and the
        netns in the --explain line. EEXIST is an error here: the name is a container's own."""
        what = f"create veth {host_ifname}"
        if explain.dry:
            if index_of(host_ifname) is not None:
                raise ConflictError(f"{what}: interface already exists (left by a crashed container? try `minirt gc`)")
            self._explain(render_veth(host_ifname, peer_ifname, mtu, bridge, mac, pid))
            return
        buf = linkmsgs.veth(self.msgs, host_ifname, peer_ifname, mtu, master, mac, netns_fd, peer_index)
        code = self._ack(self._send(buf))
        if code == errno.EEXIST:
            raise ConflictError(f"{what}: interface already exists (left by a crashed container? try `minirt gc`)")
        if code == errno.EXFULL:
            # br_add_if: port numbers run out at BR_MAX_PORTS (1024, port 0 reserved); Docker's
            # bridge driver stops at the same 1023 endpoints per network
            raise NetworkError(f"{what}: bridge {bridge} is full: a Linux bridge takes at most 1023 ports "
                               "(containers of this network); use another network")  # fmt: skip
        if code:
            raise NetworkError(f"{what}: {os.strerror(code)}")
        self._explain(render_veth(host_ifname, peer_ifname, mtu, bridge, mac, pid))

    def ensure_bridge(self, name: str, mtu: int) -> int:
        """Create bridge `name` (up, with `mtu`) unless it exists; return its ifindex (0 for
        the bridge a dry run would create)."""
        ifinfmsg = messages()[0]
        if explain.dry and self.link(name) is None:
            self._explain(render_bridge(name, mtu))
            return 0
        m = ifinfmsg()
        m["flags"] = IFF_UP
        m["change"] = IFF_UP
        m["attrs"] = [("IFLA_IFNAME", name), ("IFLA_MTU", mtu), ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "bridge")]})]
        buf = linkmsgs.pyroute2_bytes(m, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL)
        if not explain.dry and self.change(buf, f"create bridge {name}", errno.EEXIST):
            self._explain(render_bridge(name, mtu))
        link = self.link(name)
        if link is None:
            raise NetworkError(f"create bridge {name}: vanished right after creation")
        info = link.get_attr("IFLA_LINKINFO")
        kind = info.get_attr("IFLA_INFO_KIND") if info else None
        if kind != "bridge":
            raise ConflictError(f"bridge {name}: an interface of that name exists but is a {kind or 'device'}, not a bridge")
        if not link["flags"] & IFF_UP:
            self.set_up(link["index"], name)
        return link["index"]

    def set_up(self, index: int, ifname: str) -> None:
        if not explain.dry:
            self.change(linkmsgs.link_up(self.msgs, index), f"set {ifname} up")
        self._explain(render_up(ifname))

    def set_hairpin(self, ifname: str) -> None:
        """`ip link set IFNAME type bridge_slave hairpin on`, as bridge port slave data."""
        if explain.dry:
            self._explain(render_hairpin(ifname))
            return
        ifinfmsg = messages()[0]
        index = self.link_index(ifname)
        if index is None:
            raise NetworkError(f"set hairpin on {ifname}: no such link")
        m = ifinfmsg()
        m["index"] = index
        m["attrs"] = [("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_SLAVE_KIND", "bridge"),
                                                   ("IFLA_INFO_SLAVE_DATA", {"attrs": [("IFLA_BRPORT_MODE", 1)]})]})]  # fmt: skip
        self.change(linkmsgs.pyroute2_bytes(m, RTM_NEWLINK, 0), f"set hairpin on {ifname}")
        self._explain(render_hairpin(ifname))

    def delete_link(self, ifname: str) -> None:
        """Idempotent: a missing link (ENODEV) is already deleted, and prints nothing. Costs
        ~25 ms of kernel time for a veth (synchronous in this call), so the normal exit path
        leaves it to the kernel."""
        if explain.dry:
            if self.link(ifname) is not None:
                self._explain(render_delete(ifname))
            return
        ifinfmsg = messages()[0]
        m = ifinfmsg()
        m["attrs"] = [("IFLA_IFNAME", ifname)]
        if self.change(linkmsgs.pyroute2_bytes(m, RTM_DELLINK, 0), f"delete link {ifname}", errno.ENODEV):
            self._explain(render_delete(ifname))

    def delete_index(self, index: int, ifname: str) -> None:
        """delete_link by ifindex, with the compiled message; ENODEV is done, as there."""
        if explain.dry:
            self._explain(render_delete(ifname))  # the caller found it by its name just now
            return
        if self.change(linkmsgs.link_delete(self.msgs, index), f"delete link {ifname}", errno.ENODEV):
            self._explain(render_delete(ifname))

    # -- addresses and routes ---------------------------------------------------------------

    def add_address(self, index: int, ifname: str, address: str, prefixlen: int) -> None:
        """An IPv4 or IPv6 address (IPv6 with nodad, see linkmsgs.address). Idempotent: EEXIST
        (the address is already there) is success, and prints nothing."""
        if explain.dry:
            if self._new(index) or not self.has_address(index, address, prefixlen):
                self._explain(render_address(ifname, address, prefixlen))
            return
        buf = linkmsgs.address(self.msgs, index, address, prefixlen)
        if self.change(buf, f"add address {address}/{prefixlen} to {ifname}", errno.EEXIST):
            self._explain(render_address(ifname, address, prefixlen))

    add_address6 = add_address  # the same operation; the family comes from the address

    def add_default_route(self, index: int, ifname: str, gateway: str) -> None:
        """The IPv4 or IPv6 default route via gateway on ifname. EEXIST is an error: another
        default route is there, which is not the one asked for."""
        if explain.dry:
            self._explain(render_default_route(ifname, gateway))
            return
        self.change(linkmsgs.default_route(self.msgs, index, gateway), f"add default route via {gateway}")
        self._explain(render_default_route(ifname, gateway))

    def has_address(self, index: int, address: str, prefixlen: int) -> bool:
        """The link holds address/prefixlen (a dry run's check for the EEXIST it would meet)."""
        ifaddrmsg = messages()[1]
        m = ifaddrmsg()
        m["family"] = AF_INET6 if inet.version(address) == inet.V6 else AF_INET
        want = inet.parse(address)[1]
        for a in self.dump(m, RTM_GETADDR, ifaddrmsg):
            local = a.get_attr("IFA_LOCAL") or a.get_attr("IFA_ADDRESS")
            if a["index"] == index and a["prefixlen"] == prefixlen and local and inet.parse(local)[1] == want:
                return True
        return False

    def routes(self) -> list[tuple[str, int, int]]:
        """IPv4 routes of the main table as (destination, prefixlen, oif)."""
        rtmsg = messages()[2]
        m = rtmsg()
        m["family"] = AF_INET
        out = []
        for r in self.dump(m, RTM_GETROUTE, rtmsg):
            if r.get_attr("RTA_TABLE") not in (None, RT_TABLE_MAIN):
                continue
            out.append((r.get_attr("RTA_DST") or "0.0.0.0", r["dst_len"], r.get_attr("RTA_OIF") or 0))
        return out

    def uplink_mtu(self, default: int = 1500) -> int:
        """MTU of the default route's device: containers follow the uplink (Docker uses 1500
        whatever the uplink, which breaks large packets on 1400-byte VMs like ours)."""
        oifs = [oif for dst, plen, oif in self.routes() if plen == 0 and oif]
        if not oifs:
            return default
        ifinfmsg = messages()[0]
        m = ifinfmsg()
        m["index"] = oifs[0]
        found = self.dump(m, RTM_GETLINK, ifinfmsg, flags=0)
        return found[0].get_attr("IFLA_MTU") if found else default


def index_of(ifname: str) -> int | None:
    """The link's ifindex in this thread's network namespace, or None (one ioctl-free call:
    if_nametoindex, no socket of ours)."""
    try:
        return _socket.if_nametoindex(ifname)
    except OSError:
        return None


def delete_host_link(ifname: str) -> None:
    """`ip link del IFNAME` in the host netns; a link already gone is fine (Rtnl.delete_link).
    When this process has the compiled messages (linkmsgs.load ran), by ifindex with the compiled
    message, so no pyroute2 class is imported (ifindexes are not reused until the counter wraps)."""
    msgs = linkmsgs.loaded()
    host = Rtnl.host(msgs)
    try:
        if msgs is None:
            host.delete_link(ifname)
        else:
            index = index_of(ifname)
            if index is not None:  # else already gone
                host.delete_index(index, ifname)
    finally:
        host.close()


def split_messages(data: bytes):
    """(type, seq, offset, length) of each netlink message in one datagram."""
    off = 0
    while off + 16 <= len(data):
        length, mtype, _flags, seq, _pid = _HDR.unpack_from(data, off)
        if length < 16:
            break
        yield mtype, seq, off, length
        off += (length + 3) & ~3


def error_code(data: bytes, off: int) -> int:
    """An NLMSG_ERROR carries -errno right after the header (0 = ack)."""
    return -struct.unpack_from("=i", data, off + 16)[0]


class NetnsEnterError(OSError):
    """setns(2) into the target network namespace failed (nothing ran there)."""


def in_netns(netns_fd: int, fn, *args, who: bytes = b"minirt", fatal_code: int = 125):
    """fn(*args) with this thread in netns_fd's network namespace, then back.

    setns(2) moves only this thread (/proc/thread-self/ns/net; CNI pkg/ns: /proc/self is the
    main thread's), and if we cannot move back we must not go on in the wrong namespace: exit
    (CNI locks the thread to die). A failed entry is NetnsEnterError."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            os.setns(netns_fd, os.CLONE_NEWNET)
        except OSError as e:
            raise NetnsEnterError(e.errno, e.strerror) from None
        try:
            return fn(*args)
        finally:
            try:
                os.setns(own, os.CLONE_NEWNET)
            except OSError:
                os.write(2, who + b": fatal: cannot return to the host network namespace\n")
                os._exit(fatal_code)
    finally:
        os.close(own)


def socket_in(netns_fd: int) -> "_socket.socket":
    """A NETLINK_ROUTE socket that lives in another network namespace (a socket belongs to the
    netns it was created in)."""
    return in_netns(netns_fd, _socket.socket, _socket.AF_NETLINK, _socket.SOCK_DGRAM, 0)
