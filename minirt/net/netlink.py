"""rtnetlink for the bridge driver: pyroute2's message classes over our own sockets.

Runs in: the minirt parent, host network namespace; sockets for a container's namespace are
opened by switching this thread into it for one socket() call (socket_in, netavark/CNI style).

pyroute2 is the project's netlink library: every message sent or parsed here is encoded and
decoded by pyroute2's classes (ifinfmsg, ifaddrmsg, rtmsg), which know every attribute and
nesting rule (veth peer info, linkinfo). What we do not use is pyroute2's socket machinery,
because of its cost on the start-up path (measured on our 2-core VMs, python-stack.md):

    from pyroute2 import IPRoute                     150-185 ms  (package __init__: asyncio, NDB, ...)
    message classes only, package __init__ skipped    33-55 ms
    one request/ack on our own NETLINK_ROUTE socket    ~0.1 ms + kernel time

So `messages()` imports the three message modules with pyroute2's top-level __init__ skipped
(a bare package object stands in for it; the subpackages import normally), and Rtnl sends the
encoded bytes itself and reads the kernel's acks. The import runs in the parent while the
container process is importing and unsharing in parallel (runtime.py), which hides part of it.

Every change prints its `ip ...` equivalent through minirt.explain, from the same arguments.
Idempotence: ensure_bridge tolerates EEXIST (then checks the kind, as CNI ensureBridge);
delete_link treats ENODEV as done.
"""

import _socket
import errno
import os
import struct
import sys

from minirt import explain
from minirt.errors import ConflictError, NetworkError

# linux/netlink.h, linux/rtnetlink.h, linux/if.h
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 0x1, 0x4, 0x200, 0x400, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_NEWROUTE, RTM_GETROUTE = 20, 24, 26  # NEWROUTE: see linkmsgs
IFF_UP = 0x1
AF_INET = 2
AF_INET6 = 10
IFA_F_NODAD = 0x02
RT_TABLE_MAIN = 254
_HDR = struct.Struct("=IHHII")

_msgs = None


def messages():
    """pyroute2's ifinfmsg/ifaddrmsg/rtmsg without running pyroute2/__init__.py (see module doc)."""
    global _msgs
    if _msgs is None:
        if "pyroute2" not in sys.modules:
            import importlib.util
            import types

            spec = importlib.util.find_spec("pyroute2")
            if spec is None:
                raise NetworkError("pyroute2 is not installed (pip install pyroute2)")
            pkg = types.ModuleType("pyroute2")
            pkg.__path__ = list(spec.submodule_search_locations)
            pkg.__file__ = spec.origin
            sys.modules["pyroute2"] = pkg
        from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
        from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
        from pyroute2.netlink.rtnl.rtmsg import rtmsg

        _msgs = (ifinfmsg, ifaddrmsg, rtmsg)
    return _msgs


class Rtnl:
    """One NETLINK_ROUTE socket in one network namespace; requests are synchronous."""

    def __init__(self, sock: "_socket.socket"):
        self.sock = sock
        self.sock.bind((0, 0))
        self.seq = 0

    @classmethod
    def host(cls) -> "Rtnl":
        return cls(_socket.socket(_socket.AF_NETLINK, _socket.SOCK_DGRAM, 0))

    @classmethod
    def in_netns(cls, netns_fd: int) -> "Rtnl":
        return cls(socket_in(netns_fd))

    def close(self) -> None:
        self.sock.close()

    # -- transport --------------------------------------------------------------------------

    def _send(self, msg, msg_type: int, flags: int) -> int:
        self.seq += 1
        msg["header"]["type"] = msg_type
        msg["header"]["flags"] = flags
        msg["header"]["sequence_number"] = self.seq
        msg.encode()
        self.sock.send(msg.data)
        return self.seq

    def request(self, msg, msg_type: int, flags: int, what: str) -> None:
        """Send one change and wait for the kernel's ack; errno -> NetworkError naming `what`."""
        seq = self._send(msg, msg_type, flags | NLM_F_REQUEST | NLM_F_ACK)
        while True:
            data = self.sock.recv(65536)
            for mtype, mseq, off, _length in split_messages(data):
                if mseq == seq and mtype == NLMSG_ERROR:
                    code = error_code(data, off)
                    if code:
                        raise OSError(code, f"{what}: {os.strerror(code)}")
                    return

    def change(self, msg, msg_type: int, flags: int, what: str, done_errno: int | None = None) -> None:
        """request(), with errno turned into one NetworkError line naming `what`; `done_errno`
        (EEXIST for an add, ENODEV for a delete) means the change is already there."""
        try:
            self.request(msg, msg_type, flags, what)
        except OSError as e:
            if e.errno != done_errno:
                raise NetworkError(f"{what}: {e.strerror}") from None

    def dump(self, msg, msg_type: int, cls, flags: int = NLM_F_DUMP) -> list:
        seq = self._send(msg, msg_type, flags | NLM_F_REQUEST)
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

    def ensure_bridge(self, name: str, mtu: int) -> int:
        """Create bridge `name` (up, with `mtu`) unless it exists; return its ifindex."""
        ifinfmsg = messages()[0]
        explain.cmd(f"ip link add {name} mtu {mtu} type bridge")
        explain.cmd(f"ip link set {name} up")
        m = ifinfmsg()
        m["flags"] = IFF_UP
        m["change"] = IFF_UP
        m["attrs"] = [("IFLA_IFNAME", name), ("IFLA_MTU", mtu), ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "bridge")]})]
        self.change(m, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, f"create bridge {name}", errno.EEXIST)
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
        ifinfmsg = messages()[0]
        explain.cmd(f"ip link set {ifname} up")
        m = ifinfmsg()
        m["index"] = index
        m["flags"] = IFF_UP
        m["change"] = IFF_UP
        self.change(m, RTM_NEWLINK, 0, f"set {ifname} up")

    def set_hairpin(self, ifname: str) -> None:
        """`ip link set IFNAME type bridge_slave hairpin on`, as bridge port slave data."""
        ifinfmsg = messages()[0]
        index = self.link_index(ifname)
        if index is None:
            raise NetworkError(f"set hairpin on {ifname}: no such link")
        m = ifinfmsg()
        m["index"] = index
        m["attrs"] = [("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_SLAVE_KIND", "bridge"),
                                                   ("IFLA_INFO_SLAVE_DATA", {"attrs": [("IFLA_BRPORT_MODE", 1)]})]})]  # fmt: skip
        self.change(m, RTM_NEWLINK, 0, f"set hairpin on {ifname}")

    def delete_link(self, ifname: str) -> None:
        """Idempotent: a missing link (ENODEV) is already deleted. Costs ~25 ms of kernel time
        for a veth (synchronous in this call), so the normal exit path leaves it to the kernel."""
        ifinfmsg = messages()[0]
        m = ifinfmsg()
        m["attrs"] = [("IFLA_IFNAME", ifname)]
        self.change(m, RTM_DELLINK, 0, f"delete link {ifname}", errno.ENODEV)

    # -- addresses and routes ---------------------------------------------------------------

    def add_address(self, index: int, ifname: str, address: str, prefixlen: int) -> None:
        """Idempotent: EEXIST (the address is already there) is success."""
        explain.cmd(f"ip addr add {address}/{prefixlen} dev {ifname}")
        self._add_address(AF_INET, 0, index, ifname, address, prefixlen, [("IFA_LOCAL", address)])

    def add_address6(self, index: int, ifname: str, address: str, prefixlen: int) -> None:
        """An IPv6 address with IFA_F_NODAD (no duplicate address detection: usable at once,
        as netavark and Docker add theirs); idempotent like add_address."""
        explain.cmd(f"ip -6 addr add {address}/{prefixlen} dev {ifname} nodad")
        self._add_address(AF_INET6, IFA_F_NODAD, index, ifname, address, prefixlen, [])

    def _add_address(self, family: int, flags: int, index: int, ifname: str, address: str, prefixlen: int,
                     extra: list) -> None:  # fmt: skip
        m = messages()[1]()
        m["family"] = family
        m["prefixlen"] = prefixlen
        if flags:
            m["flags"] = flags
        m["index"] = index
        m["attrs"] = extra + [("IFA_ADDRESS", address)]
        self.change(m, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, f"add address {address}/{prefixlen} to {ifname}",
                    errno.EEXIST)  # fmt: skip

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


def socket_in(netns_fd: int) -> "_socket.socket":
    """A NETLINK_ROUTE socket that lives in another network namespace.

    A socket belongs to the netns it was created in. setns(2) moves only this thread
    (/proc/thread-self/ns/net; CNI pkg/ns: /proc/self is the main thread's), and if we cannot
    move back we must not go on in the wrong namespace: exit (CNI locks the thread to die).
    """
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.setns(netns_fd, os.CLONE_NEWNET)
        try:
            return _socket.socket(_socket.AF_NETLINK, _socket.SOCK_DGRAM, 0)
        finally:
            try:
                os.setns(own, os.CLONE_NEWNET)
            except OSError:
                os.write(2, b"minirt: fatal: cannot return to the host network namespace\n")
                os._exit(125)
    finally:
        os.close(own)
