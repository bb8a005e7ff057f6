"""The compiled rtnetlink messages, filled per use, must equal what pyroute2 itself encodes for
the same values; each netlink operation prints its own `ip` line, only once the kernel acked
the change (no root: encoding only, over a fake socket)."""

import errno
import struct

import pytest

from minirt import explain
from minirt.errors import ConflictError, NetworkError
from minirt.net import linkmsgs, netlink
from minirt.net.netlink import Rtnl, messages


@pytest.fixture(scope="module")
def compiled():
    return linkmsgs.compile_messages()


class Capture:
    """A socket stand-in that records what would be sent and answers each request with
    `errno` (0: ack); the real socket is exercised by the integration tests."""

    def __init__(self, errno_: int = 0):
        self.sent = []
        self.errno = errno_

    def bind(self, addr):
        pass

    def send(self, data):
        self.sent.append(bytes(data))

    def recv(self, n):
        seq = struct.unpack_from("=I", self.sent[-1], 8)[0]
        return struct.pack("=IHHIIi", 36, 2, 0, seq, 0, -self.errno) + self.sent[-1][:16]

    def close(self):
        pass


@pytest.fixture
def explained(monkeypatch):
    """The --explain lines printed while the test runs."""
    lines = []
    monkeypatch.setattr(explain, "enabled", True)
    monkeypatch.setattr(explain, "cmd", lambda line: lines.append(line) if explain.enabled else None)
    return lines


def _encoded(msg, mtype, flags, seq):
    msg["header"]["type"] = mtype
    msg["header"]["flags"] = flags
    msg["header"]["sequence_number"] = seq
    msg.encode()
    return bytes(msg.data)


def _veth(host, peer, index):
    ifinfmsg = messages()[0]
    m = ifinfmsg()
    m["flags"] = m["change"] = 1
    attrs = [("IFLA_IFNAME", peer), ("IFLA_MTU", 1400), ("IFLA_ADDRESS", "02:42:ac:11:00:02"), ("IFLA_NET_NS_FD", 9)]
    p = {"index": index, "attrs": attrs} if index is not None else {"attrs": attrs}
    m["attrs"] = [("IFLA_IFNAME", host), ("IFLA_MTU", 1400), ("IFLA_MASTER", 7),
                  ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "veth"),
                                               ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", p)]})]})]  # fmt: skip
    return _encoded(m, 16, 0x605, 1)


def test_veth_matches_pyroute2(compiled):
    """The container's primary veth (peer eth0 with ifindex 2)."""
    cap = Capture()
    Rtnl(cap, compiled).create_veth("mr0123456789ab", "eth0", 1400, 7, "02:42:ac:11:00:02", 9, bridge="minirt0",
                                    pid=42, peer_index=2)  # fmt: skip
    assert cap.sent[0] == _veth("mr0123456789ab", "eth0", 2)


@pytest.mark.parametrize("host", ["mr0123456789ab", "mr0123456789ax1", "mr0123456789"])
@pytest.mark.parametrize("peer", ["eth1", "eth9", "eth1234"])
def test_one_veth_encoder_for_every_name_length(compiled, host, peer):
    """`network connect`'s veth (host name of 15 bytes, peer ethN, no peer index) comes from the
    same compiled message as the primary one, and still equals pyroute2's bytes."""
    assert bytes(linkmsgs.veth(compiled, host, peer, 1400, 7, "02:42:ac:11:00:02", 9)) == _veth(host, peer, None)[:8] + \
        bytes(4) + _veth(host, peer, None)[12:]  # fmt: skip (only the sequence number, 1 there, differs)


@pytest.mark.parametrize("host, peer", [("mr012345678", "eth0"), ("mr0123456789ab", "eth"),
                                        ("mr0123456789ab", "eth01234"), ("mc0123456789ab", "net1-long-name")])
def test_veth_names_outside_the_compiled_slots_are_encoded_by_pyroute2(compiled, host, peer):
    """A CNI_IFNAME may be any 1-15 bytes: names the compiled slots cannot hold get the same
    message from pyroute2 itself."""
    got = bytes(linkmsgs.veth(compiled, host, peer, 1400, 7, "02:42:ac:11:00:02", 9))
    assert got == _veth(host, peer, None)[:8] + bytes(4) + _veth(host, peer, None)[12:]


@pytest.mark.parametrize("host, peer", [("mr0123456789abc0", "eth0"), ("mr0123456789ab", ""),
                                        ("mr0123456789ab", "x" * 16)])
def test_veth_names_over_ifnamsiz_are_refused(compiled, host, peer):
    with pytest.raises(NetworkError, match="must be 1-15 bytes"):
        linkmsgs.veth(compiled, host, peer, 1400, 7, "02:42:ac:11:00:02", 9)


def test_addr_up_and_route_match_pyroute2(compiled):
    ifinfmsg, ifaddrmsg, rtmsg = messages()
    cap = Capture()
    s = Rtnl(cap, compiled)
    s.set_up(2, "eth0")
    s.add_address(2, "eth0", "172.17.0.2", 16)
    s.add_default_route(2, "eth0", "172.17.0.1")
    s.set_up(5, "br-x")
    up = ifinfmsg()
    up["index"] = 2
    up["flags"] = up["change"] = 1
    assert cap.sent[0] == _encoded(up, 16, 0x5, 1)
    a = ifaddrmsg()
    a["family"], a["prefixlen"], a["index"] = 2, 16, 2
    a["attrs"] = [("IFA_LOCAL", "172.17.0.2"), ("IFA_ADDRESS", "172.17.0.2")]
    assert cap.sent[1] == _encoded(a, 20, 0x605, 2)
    r = rtmsg()
    r.update({"family": 2, "table": 254, "proto": 3, "scope": 0, "type": 1})
    r["attrs"] = [("RTA_GATEWAY", "172.17.0.1"), ("RTA_OIF", 2)]
    assert cap.sent[2] == _encoded(r, 24, 0x605, 3)
    up5 = ifinfmsg()  # a fresh message: pyroute2's are not re-encoded after a change
    up5["index"] = 5
    up5["flags"] = up5["change"] = 1
    assert cap.sent[3] == _encoded(up5, 16, 0x5, 4)


def test_v6_addr_and_route_match_pyroute2(compiled):
    _, ifaddrmsg, rtmsg = messages()
    cap = Capture()
    s = Rtnl(cap, compiled)
    s.add_address6(2, "eth0", "fd00:77::2", 64)
    s.add_default_route(2, "eth0", "fd00:77::1")
    s.add_address(9, "br-x", "fd00:78::1", 120)
    a = ifaddrmsg()
    a.update({"family": 10, "prefixlen": 64, "flags": 0x02, "index": 2})
    a["attrs"] = [("IFA_ADDRESS", "fd00:77::2")]
    assert cap.sent[0] == _encoded(a, 20, 0x605, 1)
    r = rtmsg()
    r.update({"family": 10, "table": 254, "proto": 3, "scope": 0, "type": 1})
    r["attrs"] = [("RTA_GATEWAY", "fd00:77::1"), ("RTA_OIF", 2)]
    assert cap.sent[1] == _encoded(r, 24, 0x605, 2)
    b = ifaddrmsg()
    b.update({"family": 10, "prefixlen": 120, "flags": 0x02, "index": 9})
    b["attrs"] = [("IFA_ADDRESS", "fd00:78::1")]
    assert cap.sent[2] == _encoded(b, 20, 0x605, 3)


def test_kernel_errors_become_network_errors(compiled):
    with pytest.raises(ConflictError, match="already exists"):
        Rtnl(Capture(errno.EEXIST), compiled).create_veth("mr0123456789ab", "eth0", 1400, 7, "02:42:ac:11:00:02", 9,
                                                          bridge="minirt0", pid=42)  # fmt: skip
    with pytest.raises(NetworkError, match=r"^add default route via 10\.0\.0\.1: File exists$"):
        Rtnl(Capture(errno.EEXIST), compiled).add_default_route(2, "eth0", "10.0.0.1")
    with pytest.raises(NetworkError, match=r"^add address 10\.0\.0\.2/24 to eth0: Operation not permitted$"):
        Rtnl(Capture(errno.EPERM), compiled).add_address(2, "eth0", "10.0.0.2", 24)
    with pytest.raises(NetworkError, match=r"^delete link x: Operation not permitted$"):
        Rtnl(Capture(errno.EPERM), compiled).delete_link("x")


# -- --explain: each operation renders its own line --------------------------------------------


def test_render_lines():
    assert netlink.render_veth("mr0123456789ab", "eth0", 1400, "minirt0", "02:42:ac:11:00:02", 42) == (
        "ip link add mr0123456789ab mtu 1400 master minirt0 up type veth "
        "peer name eth0 mtu 1400 address 02:42:ac:11:00:02 netns 42")  # fmt: skip
    assert netlink.render_bridge("minirt0", 1500) == "ip link add minirt0 mtu 1500 up type bridge"
    assert netlink.render_up("eth1") == "ip link set eth1 up"
    assert netlink.render_hairpin("mr0123456789ab") == "ip link set mr0123456789ab type bridge_slave hairpin on"
    assert netlink.render_delete("br-0a1b") == "ip link del br-0a1b"
    assert netlink.render_address("eth0", "10.88.0.2", 24) == "ip addr add 10.88.0.2/24 dev eth0"
    assert netlink.render_address("eth0", "fd00:77::2", 64) == "ip -6 addr add fd00:77::2/64 dev eth0 nodad"
    assert netlink.render_default_route("eth0", "10.88.0.1") == "ip route add default via 10.88.0.1 dev eth0"
    assert netlink.render_default_route("eth0", "fd00:77::1") == "ip -6 route add default via fd00:77::1 dev eth0"


def test_each_operation_prints_its_line_after_the_ack(compiled, explained):
    s = Rtnl(Capture(), compiled, where="nsenter -t 42 -n ")
    s.create_veth("mr0123456789ab", "eth0", 1400, 7, "02:42:ac:11:00:02", 9, bridge="minirt0", pid=42, peer_index=2)
    s.set_up(2, "eth0")
    s.add_address(2, "eth0", "10.88.0.2", 24)
    s.add_address6(2, "eth0", "fd00:77::2", 64)
    s.add_default_route(2, "eth0", "10.88.0.1")
    s.add_default_route(2, "eth0", "fd00:77::1")
    s.delete_link("mr0123456789ab")
    p = "nsenter -t 42 -n "
    assert explained == [
        p + netlink.render_veth("mr0123456789ab", "eth0", 1400, "minirt0", "02:42:ac:11:00:02", 42),
        p + "ip link set eth0 up",
        p + "ip addr add 10.88.0.2/24 dev eth0",
        p + "ip -6 addr add fd00:77::2/64 dev eth0 nodad",
        p + "ip route add default via 10.88.0.1 dev eth0",
        p + "ip -6 route add default via fd00:77::1 dev eth0",
        p + "ip link del mr0123456789ab",
    ]


def test_a_no_op_prints_nothing(compiled, explained):
    """EEXIST on an add, ENODEV on a delete: the kernel changed nothing, --explain says nothing."""
    Rtnl(Capture(errno.EEXIST), compiled).add_address(2, "minirt0", "10.88.0.1", 24)
    Rtnl(Capture(errno.EEXIST), compiled).add_address6(2, "minirt0", "fd00:77::1", 64)
    Rtnl(Capture(errno.ENODEV), compiled).delete_link("minirt0")
    assert explained == []


def test_a_refused_change_prints_nothing(compiled, explained):
    for op in (lambda s: s.set_up(2, "eth0"), lambda s: s.add_default_route(2, "eth0", "10.0.0.1"),
               lambda s: s.create_veth("mr0123456789ab", "eth0", 1400, 7, "02:42:ac:11:00:02", 9, bridge="b", pid=1)):  # fmt: skip
        with pytest.raises((NetworkError, ConflictError)):
            op(Rtnl(Capture(errno.EPERM), compiled))
    assert explained == []


def test_the_start_up_path_does_not_import_pyroute2(tmp_path):
    """bridge.attach's netlink work with the compiled messages cached: pyroute2 stays unimported."""
    import subprocess
    import sys

    linkmsgs.load(str(tmp_path))
    code = (
        "import sys; from minirt.net import linkmsgs; from minirt.net.netlink import Rtnl\n"
        "class S:\n"
        "    def bind(self, a): pass\n"
        "    def send(self, d): self.d = bytes(d)\n"
        "    def recv(self, n):\n"
        "        import struct; return struct.pack('=IHHIIi', 36, 2, 0, struct.unpack_from('=I', self.d, 8)[0], 0, 0) + self.d[:16]\n"
        f"r = Rtnl(S(), linkmsgs.load({str(tmp_path)!r}))\n"
        "r.create_veth('mr0123456789ab', 'eth0', 1400, 7, '02:42:ac:11:00:02', 9, bridge='b', pid=1, peer_index=2)\n"
        "r.set_up(2, 'eth0'); r.add_address(2, 'eth0', '10.0.0.2', 24); r.add_default_route(2, 'eth0', '10.0.0.1')\n"
        "print(sorted(m for m in sys.modules if m.startswith(('pyroute2', 'ipaddress', 'asyncio'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_delete_by_index_matches_pyroute2(compiled, explained):
    ifinfmsg = messages()[0]
    cap = Capture()
    Rtnl(cap, compiled).delete_index(17, "mc0123456789ab")
    m = ifinfmsg()
    m["index"] = 17
    assert cap.sent[0] == _encoded(m, 17, 0x5, 1)  # RTM_DELLINK, request + ack
    assert explained == ["ip link del mc0123456789ab"]
    cap = Capture(errno.ENODEV)  # already gone: done, and nothing to explain
    Rtnl(cap, compiled).delete_index(17, "mc0123456789ab")
    assert explained == ["ip link del mc0123456789ab"]
