"""net/subnets.py: Docker's default pools, picking a free subnet, parsing --subnet (pure)."""

import pytest

from minirt.errors import ConfigError
from minirt.net import subnets


def test_default_pool_is_dockers():
    pool = subnets.DEFAULT_POOL
    assert pool[:3] == ["172.17.0.0/16", "172.18.0.0/16", "172.19.0.0/16"]
    assert pool[14] == "172.31.0.0/16"
    assert pool[15:18] == ["192.168.0.0/20", "192.168.16.0/20", "192.168.32.0/20"]
    assert pool[-1] == "192.168.240.0/20" and len(pool) == 15 + 16
    assert all(subnets.parse_subnet(p) for p in pool)  # every entry is a valid network


def test_pick_first_free():
    assert subnets.pick_subnet(subnets.DEFAULT_POOL, []) == "172.17.0.0/16"


def test_pick_skips_pools_overlapping_routes_and_networks():
    taken = ["172.17.3.0/24", "172.18.0.0/15", "172.20.0.0/16"]  # inside, covering two, equal
    assert subnets.pick_subnet(subnets.DEFAULT_POOL, taken) == "172.21.0.0/16"
    assert subnets.pick_subnet(subnets.DEFAULT_POOL, ["172.17.0.9/32"]) == "172.18.0.0/16"  # a host route
    assert subnets.pick_subnet(subnets.DEFAULT_POOL, ["172.16.0.0/12"]) == "192.168.0.0/20"
    assert subnets.pick_subnet(subnets.DEFAULT_POOL, ["172.16.0.0/12", "192.168.0.0/19"]) == "192.168.32.0/20"


def test_pick_ignores_the_default_route_ipv6_and_garbage():
    taken = ["0.0.0.0/0", "::/0", "fd00::/8", "nonsense"]
    assert subnets.pick_subnet(subnets.DEFAULT_POOL, taken) == "172.17.0.0/16"


def test_pick_takes_route_destinations_with_host_bits():
    assert subnets.pick_subnet(["10.0.0.0/24", "10.0.1.0/24"], ["10.0.0.77/24"]) == "10.0.1.0/24"


def test_pick_exhausted():
    with pytest.raises(ConfigError, match=r"^no free subnet in the address pool .*pin one with --subnet"):
        subnets.pick_subnet(subnets.DEFAULT_POOL, ["172.16.0.0/12", "192.168.0.0/16"])
    with pytest.raises(ConfigError, match="no free subnet"):
        subnets.pick_subnet([], [])


def test_parse_subnet():
    assert subnets.parse_subnet("10.88.0.0/24") == ("10.88.0.0", 24)
    assert subnets.parse_subnet("192.168.4.0/30") == ("192.168.4.0", 30)
    assert subnets.parse_subnet("10.0.0.0/8") == ("10.0.0.0", 8)


@pytest.mark.parametrize(
    "bad, message",
    [
        ("10.0.0.1/24", r"^subnet 10\.0\.0\.1/24: host bits set"),
        ("nope", r"^subnet nope: not a valid IPv4 subnet"),
        ("10.0.0/24", "not a valid IPv4 subnet"),
        ("10.0.0.0/33", "not a valid IPv4 subnet"),
        ("", "not a valid IPv4 subnet"),
        ("fd00::/64", r"^subnet fd00::/64: only IPv4"),
        ("10.0.0.0/31", "too small"),
        ("10.0.0.0", "too small"),  # a bare address is a /32
    ],
)
def test_parse_subnet_errors(bad, message):
    with pytest.raises(ConfigError, match=message):
        subnets.parse_subnet(bad)


def test_host_bits_error_suggests_the_network():
    with pytest.raises(ConfigError, match=r"did you mean 10\.0\.0\.0/24\?"):
        subnets.parse_subnet("10.0.0.1/24")


def test_gateway_of():
    assert subnets.gateway_of("10.88.0.0/24") == "10.88.0.1"
    assert subnets.gateway_of("172.17.0.0/16") == "172.17.0.1"
    assert subnets.gateway_of("192.168.16.0/20") == "192.168.16.1"


def test_contains():
    assert subnets.contains("10.0.0.0/24", "10.0.0.9")
    assert not subnets.contains("10.0.0.0/24", "10.0.1.9")
    assert not subnets.contains("10.0.0.0/24", "nope")
