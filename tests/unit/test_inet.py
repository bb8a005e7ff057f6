"""net/inet.py: the one IPv4/IPv6 address and prefix parser (pure), checked against the stdlib
`ipaddress` where the two should agree, and for its cheap import."""

import ipaddress
import subprocess
import sys

import pytest

from minirt.net import inet


@pytest.mark.parametrize("text", ["0.0.0.0", "10.88.0.2", "255.255.255.255", "172.17.0.1"])
def test_v4_round_trip(text):
    assert inet.parse4(text) == int(ipaddress.IPv4Address(text))
    assert inet.format4(inet.parse4(text)) == text
    assert inet.parse(text) == (4, int(ipaddress.IPv4Address(text)))
    assert inet.pack(text) == ipaddress.IPv4Address(text).packed


@pytest.mark.parametrize(
    "bad", ["010.0.0.1", "10.0.0", "10.0.0.0.1", "10.0.0.256", "1.2.3.04", " 1.2.3.4", "1.2.3.4 ", "a.b.c.d",
            "1.2.3.²", "0x1.2.3.4", "", "1.2.3.-1", "::1"],  # fmt: skip
)
def test_v4_refuses_non_canonical_and_malformed(bad):
    with pytest.raises(ValueError, match="not an IPv4 address"):
        inet.parse4(bad)


def test_v6_any_spelling_and_canonical_form():
    assert inet.parse6("FD00:0077::2") == inet.parse6("fd00:77::2") == int(ipaddress.IPv6Address("fd00:77::2"))
    assert inet.format6(inet.parse6("FD00:0077:0:0::2")) == "fd00:77::2"
    assert inet.canonical("2001:DB8:0::1") == "2001:db8::1"
    assert inet.canonical("10.0.0.1") == "10.0.0.1"
    assert inet.parse6("fd00:77::2", canonical6=True) == inet.parse6("fd00:77::2")
    for bad in ("fd00:0077::2", "FD00:77::2"):
        with pytest.raises(ValueError, match="not a canonical IPv6 address"):
            inet.parse6(bad, canonical6=True)
    for bad in ("fd00::zz", "1.2.3.4", "fe80::1%eth0", "", None):
        with pytest.raises(ValueError, match="not an IPv6 address"):
            inet.parse6(bad)
    assert inet.pack("fd00::2") == bytes.fromhex("fd000000000000000000000000000002")


def test_version_by_shape():
    assert inet.version("10.0.0.1") == 4 and inet.version("::1") == 6 and inet.version("junk") == 4


@pytest.mark.parametrize("text", ["10.88.0.0/24", "0.0.0.0/0", "10.0.0.7/32", "fd00:77::/64", "::/0", "fd00::/120"])
def test_prefix_agrees_with_ipaddress(text):
    p, ref = inet.prefix(text), ipaddress.ip_network(text)
    assert (p.version, p.network, p.plen, p.last) == (ref.version, int(ref.network_address), ref.prefixlen,
                                                      int(ref.broadcast_address))  # fmt: skip
    assert str(p) == str(ref) and p.address == str(ref.network_address) and p.size == ref.num_addresses
    assert p == inet.prefix(text) and hash(p) == hash(inet.prefix(text))


def test_prefix_host_bits_bare_and_errors():
    with pytest.raises(inet.HostBitsSet) as e:
        inet.prefix("10.0.0.1/24")
    assert str(e.value.network) == "10.0.0.0/24"
    assert isinstance(e.value, ValueError)
    assert str(inet.prefix("10.0.0.1/24", strict=False)) == "10.0.0.0/24"
    assert str(inet.prefix("fd00:77::1/64", strict=False)) == "fd00:77::/64"
    assert str(inet.prefix("10.0.0.0")) == "10.0.0.0/32" and str(inet.prefix("fd00::")) == "fd00::/128"
    with pytest.raises(ValueError, match="no /LEN"):
        inet.prefix("10.0.0.0", bare=False)
    for bad in ("10.0.0.0/33", "fd00::/129", "10.0.0.0/", "10.0.0.0/x", "10.0.0.0/²", "10.0.0.0/255.0.0.0",
                "10.0.0/24", "nope", ""):  # fmt: skip
        with pytest.raises(ValueError):
            inet.prefix(bad)
    with pytest.raises(ValueError, match="canonical"):
        inet.prefix("FD00::/64", canonical6=True)
    assert inet.mask(4, 24) == 0xFFFFFF00 and inet.mask(6, 0) == 0 and inet.mask(4, 32) == 0xFFFFFFFF


def test_contains_and_overlaps():
    assert inet.contains("10.0.0.0/24", "10.0.0.9") and not inet.contains("10.0.0.0/24", "10.0.1.9")
    assert inet.contains("fd00:77::/64", "fd00:77::ffff") and not inet.contains("fd00:77::/64", "fd00:78::1")
    assert not inet.contains("10.0.0.0/24", "nope") and not inet.contains("nope", "10.0.0.1")
    assert not inet.contains("10.0.0.0/24", "::ffff:10.0.0.1")  # never across families
    assert not inet.contains("10.0.0.1/24", "10.0.0.9")  # a subnet with host bits set is malformed
    assert inet.overlaps("10.0.0.0/8", "10.3.0.0/16") and inet.overlaps("10.3.0.0/16", "10.0.0.0/8")
    assert not inet.overlaps("10.0.0.0/24", "10.0.1.0/24") and not inet.overlaps("10.0.0.0/8", "fd00::/8")
    assert inet.overlaps("fd00:77::/64", "fd00:77::/64")
    ula = inet.prefix("fd2d:7116:42b7::/48")
    assert [str(p) for p in list(ula.subnets(64))[:2]] == ["fd2d:7116:42b7::/64", "fd2d:7116:42b7:1::/64"]


def test_import_is_cheap():
    """net/inet.py is on the container start-up path (IPAM): no ipaddress, nothing but _socket."""
    code = "import sys; import minirt.net.inet; print('ipaddress' in sys.modules, 'socket' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_callers_refuse_what_the_helper_refuses():
    """-p and --dns used inet_aton / a split of their own: both took "010.0.0.1" (octal to
    inet_aton) and inet_aton even "1.2.3.4 x"; one parser now refuses them everywhere."""
    from minirt.commands.run import _check_ip
    from minirt.errors import ConfigError
    from minirt.net import dns, ports

    for bad in ("010.0.0.1", "1.2.3.4 x", "1.2.3.0x4"):
        with pytest.raises(ConfigError, match="is not an IPv4 address"):
            ports.parse(f"{bad}:8080:80")
        with pytest.raises(ConfigError, match="not an IPv4 address"):
            _check_ip(bad)
    assert [m.host_ip for m in ports.parse("127.0.0.1:8080:80")] == ["127.0.0.1"]
    assert dns.is_loopback("127.0.0.53") and dns.is_loopback("0:0::1") and dns.is_loopback("::1")
    assert not dns.is_loopback("10.0.0.1") and not dns.is_loopback("::2") and not dns.is_loopback("127.foo")
