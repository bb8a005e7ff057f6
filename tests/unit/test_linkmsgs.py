"""The compiled rtnetlink messages, filled per container, must equal what pyroute2 itself encodes
for the same values (no root: encoding only)."""

import struct

import pytest

from minirt.net import linkmsgs
from minirt.net.netlink import messages


@pytest.fixture(scope="module")
def compiled():
    return linkmsgs.compile_messages()


class Capture:
    """A socket stand-in that records what would be sent and acks it (the real socket is
    exercised by the integration tests)."""

    def __init__(self):
        self.sent = []

    def bind(self, addr):
        pass

    def send(self, data):
        self.sent.append(bytes(data))

    def recv(self, n):
        seq = struct.unpack_from("=I", self.sent[-1], 8)[0]
        return struct.pack("=IHHIIi", 36, 2, 0, seq, 0, 0) + self.sent[-1][:16]

    def close(self):
        pass


def _encoded(msg, mtype, flags, seq):
    msg["header"]["type"] = mtype
    msg["header"]["flags"] = flags
    msg["header"]["sequence_number"] = seq
    msg.encode()
    return bytes(msg.data)


def test_veth_matches_pyroute2(compiled):
    ifinfmsg, _, _ = messages()
    cap = Capture()
    linkmsgs.Sender(compiled, cap).create_veth("mr0123456789ab", 1400, 7, "02:42:ac:11:00:02", 9)
    m = ifinfmsg()
    m["flags"] = m["change"] = 1
    peer = {"index": 2, "attrs": [("IFLA_IFNAME", "eth0"), ("IFLA_MTU", 1400), ("IFLA_ADDRESS", "02:42:ac:11:00:02"),
                                  ("IFLA_NET_NS_FD", 9)]}  # fmt: skip
    m["attrs"] = [("IFLA_IFNAME", "mr0123456789ab"), ("IFLA_MTU", 1400), ("IFLA_MASTER", 7),
                  ("IFLA_LINKINFO", {"attrs": [("IFLA_INFO_KIND", "veth"),
                                               ("IFLA_INFO_DATA", {"attrs": [("VETH_INFO_PEER", peer)]})]})]  # fmt: skip
    assert cap.sent[0] == _encoded(m, 16, 0x605, 1)


def test_addr_up_and_route_match_pyroute2(compiled):
    ifinfmsg, ifaddrmsg, rtmsg = messages()
    cap = Capture()
    s = linkmsgs.Sender(compiled, cap)
    s.set_eth0_up()
    s.add_address("172.17.0.2", 16)
    s.add_default_route("172.17.0.1")
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


def test_v6_addr_and_route_match_pyroute2(compiled):
    _, ifaddrmsg, rtmsg = messages()
    cap = Capture()
    s = linkmsgs.Sender(compiled, cap)
    s.add_address6("fd00:77::2", 64)
    s.add_default_route6("fd00:77::1")
    a = ifaddrmsg()
    a.update({"family": 10, "prefixlen": 64, "flags": 0x02, "index": 2})
    a["attrs"] = [("IFA_ADDRESS", "fd00:77::2")]
    assert cap.sent[0] == _encoded(a, 20, 0x605, 1)
    r = rtmsg()
    r.update({"family": 10, "table": 254, "proto": 3, "scope": 0, "type": 1})
    r["attrs"] = [("RTA_GATEWAY", "fd00:77::1"), ("RTA_OIF", 2)]
    assert cap.sent[1] == _encoded(r, 24, 0x605, 2)


def test_kernel_errors_become_network_errors(compiled):
    class Refusing(Capture):
        def recv(self, n):
            seq = struct.unpack_from("=I", self.sent[-1], 8)[0]
            return struct.pack("=IHHIIi", 36, 2, 0, seq, 0, -17) + self.sent[-1][:16]

    from minirt.errors import ConflictError

    with pytest.raises(ConflictError, match="already exists"):
        linkmsgs.Sender(compiled, Refusing()).create_veth("mr0123456789ab", 1400, 7, "02:42:ac:11:00:02", 9)
