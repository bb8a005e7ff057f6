"""IPv6 IPAM for dual-stack networks (leases6/, allocate6) and IPv6 subnet parsing: no root."""

import os

import pytest

from minirt.errors import ConfigError, ConflictError
from minirt.net import ipam, subnets
from minirt.net.firewall import ruleset
from tests.unit.test_net_ipam import _dead_owner, _me


def test_allocator6_order_wrap_and_exclusions():
    a = ipam.Allocator6("fd00:1::/120", {"fd00:1::1"})
    got = list(a.next_candidates(None))
    assert got[:2] == ["fd00:1::2", "fd00:1::3"] and got[-1] == "fd00:1::ff" and len(got) == 254
    assert next(a.next_candidates("fd00:1::ff")) == "fd00:1::2"  # wraps round
    assert next(a.next_candidates("10.0.0.9")) == "fd00:1::2"  # a last of another family
    b = ipam.Allocator6("fd00:77::/64", {"fd00:77::1"})
    assert next(b.next_candidates("fd00:77::41")) == "fd00:77::42"  # lazy: a /64 is never listed
    assert b.usable("fd00:77::ffff:ffff:ffff:ffff") and not b.usable("fd00:77::1") and not b.usable("fd00:78::2")
    with pytest.raises(ValueError):
        ipam.Allocator6("fd00::/48", set())


def test_lease_names_are_canonical_v6(tmp_path):
    s = ipam.LeaseStore(str(tmp_path))
    for bad in ("fd00:0077::2", "FD00:77::2", "../x", "fd00:77::2/64"):
        with pytest.raises(ValueError):
            s.reserve(bad, _me("a" * 64))
    assert s.reserve("fd00:77::2", _me("a" * 64))
    assert list(s.leases()) == ["fd00:77::2"]


def test_allocate6_release_and_reclaim(tmp_path):
    d = str(tmp_path)
    a4, a6 = ipam.allocate6(d, "10.9.0.0/30", "10.9.0.1", "fd00:9::/120", "fd00:9::1", _me("a" * 64))
    assert (a4, a6) == ("10.9.0.2", "fd00:9::2")
    assert sorted(os.listdir(f"{d}/leases6")) == ["fd00:9::2", "last_reserved"]
    # a restarting container gets its previous v6 address back when free
    assert ipam.release_owner(d, "a" * 64) == ["10.9.0.2", "fd00:9::2"]
    assert ipam.allocate6(d, "10.9.0.0/29", "10.9.0.1", "fd00:9::/120", "fd00:9::1", _me("b" * 64),
                          prefer="10.9.0.2", prefer6="fd00:9::2") == ("10.9.0.2", "fd00:9::2")  # fmt: skip
    ipam.release_owner(d, "b" * 64)
    # a dead owner's v6 lease is reclaimed
    store6 = ipam.LeaseStore(f"{d}/leases6")
    assert store6.reserve("fd00:9::5", _dead_owner())
    got = ipam.allocate6(d, "10.9.0.0/29", "10.9.0.1", "fd00:9::/120", "fd00:9::1", _me("c" * 64), prefer6="fd00:9::5")
    assert got[1] == "fd00:9::5" and store6.owner_of("fd00:9::5")["container"] == "c" * 64
    ipam.release_owner(d, "c" * 64)
    assert store6.leases() == {} and ipam.LeaseStore(f"{d}/leases").leases() == {}


def test_allocate6_undoes_the_v4_lease_when_v6_is_full(tmp_path):
    d = str(tmp_path)
    ipam.allocate6(d, "10.9.0.0/29", "10.9.0.1", "fd00:9::/126", "fd00:9::1", _me("a" * 64))
    ipam.allocate6(d, "10.9.0.0/29", "10.9.0.1", "fd00:9::/126", "fd00:9::1", _me("b" * 64))
    with pytest.raises(ConflictError, match="fd00:9::/126"):
        ipam.allocate6(d, "10.9.0.0/29", "10.9.0.1", "fd00:9::/126", "fd00:9::1", _me("c" * 64))
    assert sorted(o["container"][0] for o in ipam.LeaseStore(f"{d}/leases").leases().values()) == ["a", "b"]


def test_v4_release_ignores_a_missing_leases6(tmp_path):
    d = str(tmp_path)
    ipam.allocate(d, "10.9.0.0/29", "10.9.0.1", _me("a" * 64))
    assert ipam.release_owner(d, "a" * 64) == ["10.9.0.2"]
    assert not os.path.exists(f"{d}/leases6")


def test_parse_subnet6_and_ula():
    assert subnets.parse_subnet6("fd00:77::/64") == ("fd00:77::", 64)
    for bad, why in (("fd00:77::1/64", "host bits"), ("10.0.0.0/24", "not an IPv6"), ("fd00::/48", "/64 to /120"),
                     ("nope", "not a valid IPv6")):  # fmt: skip
        with pytest.raises(ConfigError, match=why):
            subnets.parse_subnet6(bad)
    a = subnets.ula_for("x", [])
    assert a == subnets.ula_for("x", []) and a.startswith("fd") and a.endswith("::/64")
    assert subnets.ula_for("x", [a]) != a  # next subnet ID when taken


def test_masquerade6_refuses_bad_subnets():
    from minirt.net.firewall import NetworkSpec

    for bad in ("fd00:77::1/64", "FD00:77::/64", "10.0.0.0/24"):
        with pytest.raises(ConfigError):
            ruleset.setup_network_batch(NetworkSpec("d", "br-d", "10.7.0.0/24", "10.7.0.1", subnet6=bad))
