"""IPv6 published ports: `-p [v6]:h:c` parsing, the nft scripts of dual-stack containers, and
the reservation sockets on :: (no root: ephemeral ports on loopback/any)."""

import _socket

import pytest

from minirt.errors import ConfigError
from minirt.net import ports
from minirt.net.firewall import ports as fwports


def test_parse_v6_host_address():
    (m,) = ports.parse("[2001:DB8:0::1]:8080:80/udp")
    assert (m.host_ip, m.host_port, m.container_port, m.proto) == ("2001:db8::1", 8080, 80, "udp")
    assert str(m) == "80/udp -> [2001:db8::1]:8080"
    assert [x.host_port for x in ports.parse("[fd00::1]:8080-8081:80-81")] == [8080, 8081]
    for bad, why in (("[::1]:8080:80", "without a proxy"), ("[::]:8080:80", "omit the address"),
                     ("[fd00::zz]:1:2", "not an IPv6"), ("[fd00::1]:80", "expected")):  # fmt: skip
        with pytest.raises(ConfigError, match=why):
            ports.parse(bad)


def test_v4_only_scripts_are_unchanged_and_dual_stack_adds_v6():
    maps = ports.parse("8080:80") + ports.parse("127.0.0.1:9090:80") + ports.parse("[2001:db8::1]:8082:80")
    v4 = fwports.publish_script(fwports.elements(maps, "10.0.0.2"))
    assert "ports6" not in v4 and v4.startswith(fwports.DECLARE + "\n")
    dual = fwports.publish_script(fwports.elements(maps, "10.0.0.2", "fd00:77::2")).splitlines()
    elements = [line for line in dual if line.startswith("add element")]
    assert elements == [
        "add element inet minirt ports_any { tcp . 8080 : 10.0.0.2 . 80 }",
        "add element inet minirt ports6_any { tcp . 8080 : fd00:77::2 . 80 }",
        "add element inet minirt ports_ip { 127.0.0.1 . tcp . 9090 : 10.0.0.2 . 80 }",
        "add element inet minirt ports6_ip { 2001:db8::1 . tcp . 8082 : fd00:77::2 . 80 }",
    ]
    undo = fwports.unpublish_script(fwports.elements(maps, "10.0.0.2", "fd00:77::2"))
    assert "delete element inet minirt ports6_any { tcp . 8080 }" in undo


def test_reserve_holds_the_port_on_both_families():
    (m,) = ports.parse("80")  # no host port: the kernel picks an ephemeral one
    held = ports.reserve([m], ipv6=True)
    try:
        assert [s.family for s in held] == [_socket.AF_INET, _socket.AF_INET6]
        assert held[1].getsockname()[:2] == ("::", m.host_port)
        assert held[1].getsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY) == 1
    finally:
        for s in held:
            s.close()
    with pytest.raises(ConfigError, match="no IPv6"):
        ports.reserve(ports.parse("[fd00::1]:8080:80"))
