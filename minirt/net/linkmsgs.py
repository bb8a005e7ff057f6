"""The one encoder of minirt's rtnetlink changes: messages compiled once by pyroute2, filled per use.

Runs in: the minirt parent (and `network` commands), host network namespace or a socket opened
in a container's netns; pure apart from load()'s cache file. The socket side, acks and
--explain are net/netlink.py's (Rtnl), which imports this module, never the other way round.

Why: importing pyroute2's message classes costs 33-55 ms here (logging, multiprocessing,
typing, its plugin walk), more than everything else `minirt run --net bridge` does together.
Yet the messages minirt sends most have a fixed layout: interface names fit a fixed padded
size, ifindex, MTU, master, MAC, netns fd and addresses are fixed-size fields. So pyroute2
encodes each message once, with sentinel values in the variable fields, and we record where
each field landed. The six messages, each with its variable fields:

    veth   RTM_NEWLINK  create + IFLA_MASTER + IFF_UP, with its peer in a netns given by fd
                        host_ifname (12-15 bytes), mtu, master, peer_ifname (4-7 bytes),
                        peer_index (0: the kernel chooses), peer_mtu, mac, netns_fd
    up     RTM_NEWLINK  index IFF_UP
    addr   RTM_NEWADDR  index, prefixlen, IFA_LOCAL = IFA_ADDRESS = the IPv4 address
    route  RTM_NEWROUTE default via the IPv4 gateway, oif
    addr6  RTM_NEWADDR  index, prefixlen, IFA_ADDRESS (IPv6, IFA_F_NODAD)
    route6 RTM_NEWROUTE ::/0 via the IPv6 gateway, oif
    del    RTM_DELLINK  index (a host veth, by the ifindex if_nametoindex gave: minirt-cni's DEL)

Every caller encodes these through veth()/link_up()/address()/default_route(): a container's
start (net/bridge.py, from the cache: no pyroute2 import on that path), `network connect`
(eth1..eth9) and a network's bridge address (net/network.py, compiled in memory by
compiled() since those paths import pyroute2 anyway). A name field holds any name whose
attribute pads to the sentinel's size: the attribute length is rewritten, the padding zeroed,
so the bytes equal pyroute2's own for that name (tests/unit/test_linkmsgs.py checks it).
Messages minirt sends rarely (bridge creation, hairpin, delete, dumps) are built by pyroute2
directly (netlink.py).

The compiled set is cached in $MINIRT_ROOT/netlink-messages.json (written atomically,
recompiled if missing or of another FORMAT); compile_messages() checks that every sentinel
occurs exactly once, so a pyroute2 that encoded differently fails loudly instead of sending a
wrong message.
"""

import os
import struct
import sys

from minirt import jsonenc
from minirt.errors import NetworkError
from minirt.net import inet

# linux/netlink.h, linux/rtnetlink.h, linux/if.h, linux/if_addr.h
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 0x1, 0x4, 0x200, 0x400, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_NEWROUTE, RTM_GETROUTE = 20, 24, 26
IFF_UP = 0x1
AF_INET = 2
AF_INET6 = 10
IFA_F_NODAD = 0x02
RT_TABLE_MAIN = 254

FORMAT = 5

# sentinel values: byte patterns that cannot occur elsewhere in these messages
_S_HOST = "mr" + "Q" * 13  # 15 bytes (IFNAMSIZ - 1): the attribute pads to 20 for 12-15 bytes
_S_PEER = "eQZ%"  # 4 bytes: pads to 12 for 4-7 bytes (eth0 .. eth9)
_S = {"mtu": 0xC1A7E501, "peer_mtu": 0xC1A7E502, "netns_fd": 0xC1A7E503, "master": 0xC1A7E504,
      "peer_index": 0x41A7E505}  # fmt: skip
_S_INDEX = 0x41A7E506  # ifi_index is a signed int: below 2**31
_S_MAC = "c3:d4:e5:f6:a7:09"
_S_ADDR = "203.0.113.77"
_S_PLEN = 0x1D  # /29, found at the ifaddrmsg's fixed offset
_S_GW = "198.51.100.77"
_S_ADDR6 = "2001:db8:c1a7:e5f6:a709:77c3:d4e5:f601"
_S_GW6 = "2001:db8:c1a7:e5f6:a709:77c3:d4e5:f602"
_S_PLEN6 = 0x5F  # /95, at the ifaddrmsg's fixed offset
_PLEN_OFFSET = 17  # struct ifaddrmsg { u8 family; u8 prefixlen; ... } right after the 16-byte header

_msgs = None
_compiled = None


def messages():
    """pyroute2's ifinfmsg/ifaddrmsg/rtmsg without running pyroute2/__init__.py (which imports
    asyncio, NDB and more: 150-185 ms; the message classes alone cost 33-55 ms)."""
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


def pyroute2_bytes(msg, msg_type: int, flags: int) -> bytearray:
    """A pyroute2 message encoded as a request that asks for an ack (sequence number 0:
    the transport writes its own)."""
    msg["header"]["type"] = msg_type
    msg["header"]["flags"] = flags | NLM_F_REQUEST | NLM_F_ACK
    msg["header"]["sequence_number"] = 0
    msg.encode()
    return bytearray(msg.data)


# -- compiling -------------------------------------------------------------------------------


def _veth_msg(host_ifname: str, peer_ifname: str, mtu: int, peer_mtu: int, master: int, mac: str, netns_fd: int,
              peer_index: int):  # fmt: skip
    """The veth RTM_NEWLINK as a pyroute2 message (compiled once with sentinels, or filled
    directly for names the compiled slots cannot hold)."""
    ifinfmsg = messages()[0]
    veth = ifinfmsg()
    veth["flags"] = veth["change"] = IFF_UP  # the kernel brings the host end up on creation
    # eth0 is given ifindex 2 (a fresh netns holds only lo) so later messages can name it
    # without a lookup; a peer of `network connect` gets 0 (the kernel picks). It cannot be
    # created up: veth_open() refuses with ENOTCONN until the pair is linked, so the peer is
    # set up by its own message ("up").
    peer = {"index": peer_index,
            "attrs": [("IFLA_IFNAME", peer_ifname), ("IFLA_MTU", peer_mtu), ("IFLA_ADDRESS", mac),
                      ("IFLA_NET_NS_FD", netns_fd)]}  # fmt: skip
    veth["attrs"] = [
        ("IFLA_IFNAME", host_ifname), ("IFLA_MTU", mtu), ("IFLA_MASTER", master),
        ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "veth"),
                                     ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", peer)]})]}),
    ]  # fmt: skip
    return veth


def compile_messages() -> dict:
    """Encode the six messages with pyroute2 and locate their variable fields."""
    ifinfmsg, ifaddrmsg, rtmsg = messages()
    create = NLM_F_CREATE | NLM_F_EXCL

    veth = _veth_msg(_S_HOST, _S_PEER, _S["mtu"], _S["peer_mtu"], _S["master"], _S_MAC, _S["netns_fd"],
                     _S["peer_index"])  # fmt: skip
    up = ifinfmsg()
    up["index"] = _S_INDEX
    up["flags"] = up["change"] = IFF_UP
    dellink = ifinfmsg()
    dellink["index"] = _S_INDEX
    addr = ifaddrmsg()
    addr.update({"family": AF_INET, "prefixlen": _S_PLEN, "index": _S_INDEX})
    addr["attrs"] = [("IFA_LOCAL", _S_ADDR), ("IFA_ADDRESS", _S_ADDR)]
    route = rtmsg()
    route.update({"family": AF_INET, "table": RT_TABLE_MAIN, "proto": 3, "scope": 0, "type": 1})
    route["attrs"] = [("RTA_GATEWAY", _S_GW), ("RTA_OIF", _S_INDEX)]
    addr6 = ifaddrmsg()
    addr6.update({"family": AF_INET6, "prefixlen": _S_PLEN6, "flags": IFA_F_NODAD, "index": _S_INDEX})
    addr6["attrs"] = [("IFA_ADDRESS", _S_ADDR6)]
    route6 = rtmsg()
    route6.update({"family": AF_INET6, "table": RT_TABLE_MAIN, "proto": 3, "scope": 0, "type": 1})
    route6["attrs"] = [("RTA_GATEWAY", _S_GW6), ("RTA_OIF", _S_INDEX)]

    out = {"format": FORMAT}
    for name, msg, mtype, flags in (("veth", veth, RTM_NEWLINK, create), ("up", up, RTM_NEWLINK, 0),
                                    ("addr", addr, RTM_NEWADDR, create), ("route", route, RTM_NEWROUTE, create),
                                    ("addr6", addr6, RTM_NEWADDR, create),
                                    ("route6", route6, RTM_NEWROUTE, create),
                                    ("del", dellink, RTM_DELLINK, 0)):  # fmt: skip
        data = bytes(pyroute2_bytes(msg, mtype, flags))
        out[name] = {"bytes": data.hex(), "fields": {}}
    u32 = struct.Struct("=I").pack

    def field(name: str, key: str, kind: str, needle: bytes, what: str, count: int = 1, size: int = 0):
        data = bytes.fromhex(out[name]["bytes"])
        offs = _find(data, needle, what, count)
        out[name]["fields"][key] = [kind, offs if count == 1 else offs[0], size or len(needle)]
        return offs

    field("veth", "host_ifname", "name", _S_HOST.encode(), "veth host name")
    field("veth", "peer_ifname", "name", _S_PEER.encode(), "veth peer name")
    field("veth", "mac", "raw", bytes.fromhex(_S_MAC.replace(":", "")), "veth peer MAC")
    for key, value in _S.items():
        field("veth", key, "u32", u32(value), f"veth {key}")
    field("up", "index", "u32", u32(_S_INDEX), "up index")
    field("del", "index", "u32", u32(_S_INDEX), "del index")
    for name, address, plen, family in (("addr", _S_ADDR, _S_PLEN, "IPv4"), ("addr6", _S_ADDR6, _S_PLEN6, "IPv6")):
        offs = field(name, "address", "raw", inet.pack(address), f"{family} address", count=2 if name == "addr" else 1)
        if name == "addr":
            out[name]["fields"]["local"] = ["raw", offs[0], 4]
            out[name]["fields"]["address"] = ["raw", offs[1], 4]
        field(name, "index", "u32", u32(_S_INDEX), f"{family} address index")
        if bytes.fromhex(out[name]["bytes"])[_PLEN_OFFSET] != plen:
            raise NetworkError("compile netlink messages: ifaddrmsg layout is not the kernel's")
        out[name]["fields"]["prefixlen"] = ["u8", _PLEN_OFFSET, 1]
    for name, gateway, family in (("route", _S_GW, "IPv4"), ("route6", _S_GW6, "IPv6")):
        field(name, "gateway", "raw", inet.pack(gateway), f"{family} gateway")
        field(name, "oif", "u32", u32(_S_INDEX), f"{family} route oif")
    return out


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
    global _compiled
    path = f"{root}/netlink-messages.json"
    try:
        with open(path) as f:
            msgs = jsonenc.loads(f.read())
        if msgs.get("format") == FORMAT:
            _compiled = _compiled or msgs
            return msgs
    except (FileNotFoundError, ValueError):
        pass
    from minirt.state import atomic_write_json

    msgs = compiled()
    from minirt import explain

    if not explain.dry:  # a dry run leaves the state root as it found it, caches included
        os.makedirs(root, mode=0o700, exist_ok=True)
        atomic_write_json(path, msgs)
    return msgs


def loaded() -> dict | None:
    """The compiled messages if this process has them already (load() or compiled() ran)."""
    return _compiled


def compiled() -> dict:
    """The compiled messages of this process: load()'s if it ran, else compiled now (for paths
    that do not know the state root and import pyroute2 anyway)."""
    global _compiled
    if _compiled is None:
        _compiled = compile_messages()
    return _compiled


# -- filling ---------------------------------------------------------------------------------


def encode(msgs: dict, name: str, **fields) -> bytearray:
    """A copy of compiled message `name` with `fields` written at their offsets."""
    tpl = msgs[name]
    buf = bytearray.fromhex(tpl["bytes"])
    offs = tpl["fields"]
    for key, value in fields.items():
        kind, off, size = offs[key]
        if kind == "u32":
            struct.pack_into("=I", buf, off, value)
        elif kind == "u8":
            buf[off] = value
        elif kind == "raw":
            if len(value) != size:
                raise NetworkError(f"netlink {name}: {key} must be {size} bytes")
            buf[off : off + size] = value
        else:  # "name": an asciiz attribute; any name whose attribute pads to the same size
            raw = value.encode()
            padded = (size + 1 + 3) & ~3
            if not (0 < len(raw) + 1 <= padded and (len(raw) + 1 + 3) & ~3 == padded):
                raise NetworkError(f"netlink {name}: {key} {value!r} must be {padded - 4}-{padded - 1} bytes")
            struct.pack_into("=H", buf, off - 4, 4 + len(raw) + 1)  # struct rtattr { u16 rta_len; ... }
            buf[off : off + padded] = raw.ljust(padded, b"\0")
    return buf


def veth(msgs: dict, host_ifname: str, peer_ifname: str, mtu: int, master: int, mac: str, netns_fd: int,
         peer_index: int = 0) -> bytearray:  # fmt: skip
    """`ip link add HOST mtu M master BR up type veth peer name PEER mtu M address MAC netns FD`.

    A peer name the compiled slot cannot hold (4-7 bytes: eth0..eth9; a CNI_IFNAME may be any
    1-15) is encoded by pyroute2 directly, the same message (the class import is paid then)."""
    for name in (host_ifname, peer_ifname):
        if not 0 < len(name.encode()) <= 15:  # IFNAMSIZ - 1
            raise NetworkError(f"netlink veth: interface name {name!r} must be 1-15 bytes")
    if not 4 <= len(peer_ifname.encode()) <= 7 or not 12 <= len(host_ifname.encode()) <= 15:
        msg = _veth_msg(host_ifname, peer_ifname, mtu, mtu, master, mac, netns_fd, peer_index)
        return pyroute2_bytes(msg, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL)
    return encode(msgs, "veth", host_ifname=host_ifname, peer_ifname=peer_ifname, mtu=mtu, peer_mtu=mtu,
                  master=master, mac=bytes.fromhex(mac.replace(":", "")), netns_fd=netns_fd,
                  peer_index=peer_index)  # fmt: skip


def link_up(msgs: dict, index: int) -> bytearray:
    return encode(msgs, "up", index=index)


def link_delete(msgs: dict, index: int) -> bytearray:
    """`ip link del` of the link with ifindex `index`."""
    return encode(msgs, "del", index=index)


def address(msgs: dict, index: int, addr: str, prefixlen: int) -> bytearray:
    """An IPv4 address (IFA_LOCAL and IFA_ADDRESS), or an IPv6 one with IFA_F_NODAD (no
    duplicate address detection: usable at once, as netavark and Docker add theirs)."""
    ver, n = inet.parse(addr)
    if ver == inet.V6:
        return encode(msgs, "addr6", index=index, address=n.to_bytes(16, "big"), prefixlen=prefixlen)
    packed = n.to_bytes(4, "big")
    return encode(msgs, "addr", index=index, local=packed, address=packed, prefixlen=prefixlen)


def default_route(msgs: dict, oif: int, gateway: str) -> bytearray:
    ver, n = inet.parse(gateway)
    if ver == inet.V6:
        return encode(msgs, "route6", oif=oif, gateway=n.to_bytes(16, "big"))
    return encode(msgs, "route", oif=oif, gateway=n.to_bytes(4, "big"))
