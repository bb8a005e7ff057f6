"""The rtnetlink messages of a container's start, compiled once by pyroute2, filled per container.

Runs in: the minirt parent, host network namespace (and, for the container-side messages, a
socket opened in the container's netns).

Why: importing pyroute2's message classes costs 33-55 ms here (logging, multiprocessing,
typing, its plugin walk), more than everything else `minirt run --net bridge` does together.
Yet the messages a container needs have a fixed layout: the host veth name is always
"mr" + 12 hex, the peer is always "eth0" with ifindex 2 (a fresh netns has only lo, 1), MTU,
master, MAC, netns fd and addresses are fixed-size fields. So pyroute2 encodes each message
once, with sentinel values in the variable fields, and we record where each field landed:

    veth   RTM_NEWLINK  create + IFLA_MASTER + IFF_UP, peer eth0 (ifindex 2) by netns fd
    up     RTM_NEWLINK  ifindex 2 IFF_UP
    addr   RTM_NEWADDR  IFA_LOCAL/IFA_ADDRESS on ifindex 2
    route  RTM_NEWROUTE default via the gateway, oif 2
    addr6  RTM_NEWADDR  IFA_ADDRESS (IPv6, IFA_F_NODAD) on ifindex 2     dual-stack networks
    route6 RTM_NEWROUTE ::/0 via the IPv6 gateway, oif 2                 dual-stack networks

Per container we copy the bytes, write the fields at their offsets, send, and read the ack:
no pyroute2 import on the per-container path. The compiled set is cached in
$MINIRT_ROOT/netlink-messages.json (written atomically, recompiled if missing or of another
format); compile() checks that every sentinel occurs exactly once, so a pyroute2 that encoded
differently fails loudly instead of sending a wrong message.
"""

import _socket
import errno
import os
import struct

from minirt import jsonenc
from minirt.errors import ConflictError, NetworkError
from minirt.net.netlink import NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST, NLMSG_ERROR, error_code, split_messages

FORMAT = 3

# sentinel values: byte patterns that cannot occur elsewhere in these messages
_S_HOST = "mr" + "Q" * 12
_S = {"mtu": 0xC1A7E501, "peer_mtu": 0xC1A7E502, "netns_fd": 0xC1A7E503, "master": 0xC1A7E504}
_S_MAC = "c3:d4:e5:f6:a7:09"
_S_ADDR = "203.0.113.77"
_S_PLEN = 0x1D  # /29, found at the ifaddrmsg's fixed offset
_S_GW = "198.51.100.77"
_S_ADDR6 = "2001:db8:c1a7:e5f6:a709:77c3:d4e5:f601"
_S_GW6 = "2001:db8:c1a7:e5f6:a709:77c3:d4e5:f602"
_S_PLEN6 = 0x5F  # /95, at the ifaddrmsg's fixed offset


def compile_messages() -> dict:
    """Encode the three messages with pyroute2 and locate their variable fields."""
    from minirt.net.netlink import RTM_NEWADDR, RTM_NEWLINK, RTM_NEWROUTE, messages

    ifinfmsg, ifaddrmsg, rtmsg = messages()
    create = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL

    veth = ifinfmsg()
    veth["flags"] = veth["change"] = 1  # IFF_UP: the kernel brings the host end up on creation
    # The peer gets ifindex 2 (a fresh netns holds only lo) so later messages can name it without
    # a lookup. It cannot be created up: veth_open() refuses with ENOTCONN until the pair is
    # linked, so eth0 is set up by its own message ("up").
    peer = {"index": 2,
            "attrs": [("IFLA_IFNAME", "eth0"), ("IFLA_MTU", _S["peer_mtu"]), ("IFLA_ADDRESS", _S_MAC),
                      ("IFLA_NET_NS_FD", _S["netns_fd"])]}  # fmt: skip
    veth["attrs"] = [
        ("IFLA_IFNAME", _S_HOST), ("IFLA_MTU", _S["mtu"]), ("IFLA_MASTER", _S["master"]),
        ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "veth"),
                                     ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", peer)]})]}),
    ]  # fmt: skip
    up = ifinfmsg()
    up["index"] = 2
    up["flags"] = up["change"] = 1
    addr = ifaddrmsg()
    addr["family"] = 2
    addr["prefixlen"] = _S_PLEN
    addr["index"] = 2
    addr["attrs"] = [("IFA_LOCAL", _S_ADDR), ("IFA_ADDRESS", _S_ADDR)]
    route = rtmsg()
    route.update({"family": 2, "table": 254, "proto": 3, "scope": 0, "type": 1})
    route["attrs"] = [("RTA_GATEWAY", _S_GW), ("RTA_OIF", 2)]

    addr6 = ifaddrmsg()
    addr6.update({"family": 10, "prefixlen": _S_PLEN6, "flags": 0x02, "index": 2})  # IFA_F_NODAD
    addr6["attrs"] = [("IFA_ADDRESS", _S_ADDR6)]
    route6 = rtmsg()
    route6.update({"family": 10, "table": 254, "proto": 3, "scope": 0, "type": 1})
    route6["attrs"] = [("RTA_GATEWAY", _S_GW6), ("RTA_OIF", 2)]

    out = {"format": FORMAT}
    for name, msg, mtype in (("veth", veth, RTM_NEWLINK), ("up", up, RTM_NEWLINK), ("addr", addr, RTM_NEWADDR),
                             ("route", route, RTM_NEWROUTE), ("addr6", addr6, RTM_NEWADDR),
                             ("route6", route6, RTM_NEWROUTE)):  # fmt: skip
        msg["header"]["type"] = mtype
        msg["header"]["flags"] = create if name != "up" else NLM_F_REQUEST | NLM_F_ACK
        msg["header"]["sequence_number"] = 0
        msg.encode()
        out[name] = {"bytes": bytes(msg.data).hex(), "fields": {}}
    data = bytes.fromhex(out["veth"]["bytes"])
    f = out["veth"]["fields"]
    f["host_ifname"] = _find(data, _S_HOST.encode(), "veth host name")
    f["mac"] = _find(data, bytes.fromhex(_S_MAC.replace(":", "")), "veth peer MAC")
    for key, value in _S.items():
        f[key] = _find(data, struct.pack("=I", value), f"veth {key}")
    data = bytes.fromhex(out["addr"]["bytes"])
    out["addr"]["fields"] = {
        "local": _find(data, _socket.inet_aton(_S_ADDR), "address", count=2)[0],
        "address": _find(data, _socket.inet_aton(_S_ADDR), "address", count=2)[1],
        "prefixlen": 17,  # struct ifaddrmsg { u8 family; u8 prefixlen; ... } right after the header
    }
    if data[17] != _S_PLEN:
        raise NetworkError("compile netlink messages: ifaddrmsg layout is not the kernel's")
    data = bytes.fromhex(out["route"]["bytes"])
    out["route"]["fields"] = {"gateway": _find(data, _socket.inet_aton(_S_GW), "gateway")}
    data = bytes.fromhex(out["addr6"]["bytes"])
    out["addr6"]["fields"] = {"address": _find(data, _inet6(_S_ADDR6), "IPv6 address"), "prefixlen": 17}
    if data[17] != _S_PLEN6:
        raise NetworkError("compile netlink messages: ifaddrmsg layout is not the kernel's")
    data = bytes.fromhex(out["route6"]["bytes"])
    out["route6"]["fields"] = {"gateway": _find(data, _inet6(_S_GW6), "IPv6 gateway")}
    return out


def _inet6(address: str) -> bytes:
    return _socket.inet_pton(_socket.AF_INET6, address)


def _find(data: bytes, needle: bytes, what: str, count: int = 1):
    offs, i = [], data.find(needle)
    while i >= 0:
        offs.append(i)
        i = data.find(needle, i + 1)
    if len(offs) != count:
        raise NetworkError(f"compile netlink messages: {what} found {len(offs)} times, expected {count}")
    return offs[0] if count == 1 else offs


def load(root: str) -> dict:
    """The compiled messages, from the cache or compiled now (imports pyroute2 once)."""
    path = f"{root}/netlink-messages.json"
    try:
        with open(path) as f:
            msgs = jsonenc.loads(f.read())
        if msgs.get("format") == FORMAT:
            return msgs
    except (FileNotFoundError, ValueError):
        pass
    from minirt.state import atomic_write_json

    msgs = compile_messages()
    os.makedirs(root, mode=0o700, exist_ok=True)
    atomic_write_json(path, msgs)
    return msgs


class Sender:
    """Fills and sends compiled messages on one NETLINK_ROUTE socket, waiting for each ack."""

    def __init__(self, msgs: dict, sock: "_socket.socket"):
        self.msgs = msgs
        self.sock = sock
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def _send(self, name: str, what: str, **fields) -> None:
        tpl = self.msgs[name]
        buf = bytearray.fromhex(tpl["bytes"])
        offs = tpl["fields"]
        for key, value in fields.items():
            off = offs[key]
            if isinstance(value, int):
                if key == "prefixlen":
                    buf[off] = value
                else:
                    struct.pack_into("=I", buf, off, value)
            else:
                buf[off : off + len(value)] = value
        self.seq += 1
        struct.pack_into("=I", buf, 8, self.seq)
        self.sock.send(buf)
        while True:
            data = self.sock.recv(65536)
            for mtype, seq, off, _length in split_messages(data):
                if mtype == NLMSG_ERROR and seq == self.seq:
                    code = error_code(data, off)
                    if code:
                        raise OSError(code, f"{what}: {os.strerror(code)}")
                    return

    def create_veth(self, host_ifname: str, mtu: int, master: int, mac: str, netns_fd: int) -> None:
        if len(host_ifname) != len(_S_HOST):
            raise NetworkError(f"create veth {host_ifname}: host name must be {len(_S_HOST)} bytes")
        try:
            self._send(
                "veth", f"create veth {host_ifname}", host_ifname=host_ifname.encode(), mtu=mtu, peer_mtu=mtu,
                master=master, netns_fd=netns_fd, mac=bytes.fromhex(mac.replace(":", "")),
            )  # fmt: skip
        except OSError as e:
            if e.errno == errno.EEXIST:
                raise ConflictError(
                    f"create veth {host_ifname}: interface already exists (left by a crashed container? try `minirt gc`)"
                ) from None
            raise NetworkError(f"create veth {host_ifname}: {e.strerror}") from None

    def set_eth0_up(self) -> None:
        try:
            self._send("up", "set eth0 up")
        except OSError as e:
            raise NetworkError(f"set eth0 up: {e.strerror}") from None

    def add_address(self, address: str, prefixlen: int) -> None:
        a = _socket.inet_aton(address)
        try:
            self._send("addr", f"add address {address}", local=a, address=a, prefixlen=prefixlen)
        except OSError as e:
            raise NetworkError(f"add address {address}/{prefixlen} to eth0: {e.strerror}") from None

    def add_address6(self, address: str, prefixlen: int) -> None:
        try:
            self._send("addr6", f"add address {address}", address=_inet6(address), prefixlen=prefixlen)
        except OSError as e:
            raise NetworkError(f"add address {address}/{prefixlen} to eth0: {e.strerror}") from None

    def add_default_route6(self, gateway: str) -> None:
        try:
            self._send("route6", "add default route", gateway=_inet6(gateway))
        except OSError as e:
            raise NetworkError(f"add default route via {gateway}: {e.strerror}") from None

    def add_default_route(self, gateway: str) -> None:
        try:
            self._send("route", "add default route", gateway=_socket.inet_aton(gateway))
        except OSError as e:
            raise NetworkError(f"add default route via {gateway}: {e.strerror}") from None
