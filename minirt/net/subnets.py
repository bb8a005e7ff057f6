"""Choosing and checking a network's subnet: Docker's default pools, minus what is in use (pure).

Runs in: host, minirt parent, once per network creation (not per container). Addresses and
prefixes are net/inet.py's, as everywhere in minirt.

Be aware:
- The pools are IPv4; IPv6 subnets are given (--subnet) or a ULA /64 (ula_for).
- pick_subnet() counts every prefix it is given except the default route. Which host routes to
  pass is the caller's choice: Docker before v23 checked all non-default routes; since moby PR
  #42598 (libnetwork/netutils/utils_linux.go, InferReservedNetworks) only on-link routes and
  the resolv.conf nameservers.
"""

from minirt.errors import ConfigError
from minirt.net import inet

# moby libnetwork/ipamutils, local scope: 172.17.0.0/16 ... 172.31.0.0/16, each a network, then
# 192.168.0.0/16 split into /20s: 31 networks in all.
DEFAULT_POOL = [f"172.{n}.0.0/16" for n in range(17, 32)] + [f"192.168.{n}.0/20" for n in range(0, 256, 16)]


def _network(s: str, family: str, example: str) -> inet.Prefix:
    """The prefix named by s (host bits clear), or one ConfigError line."""
    try:
        return inet.prefix(s)
    except inet.HostBitsSet as e:
        raise ConfigError(f"subnet {s}: host bits set (did you mean {e.network}?)") from None
    except ValueError:
        raise ConfigError(f"subnet {s}: not a valid {family} subnet (expected CIDR such as {example})") from None


def parse_subnet(s: str) -> tuple[str, int]:
    """'10.88.0.0/24' -> ('10.88.0.0', 24); ConfigError for anything that is not an IPv4
    network with room for a gateway and a container (/30 at most) or has host bits set."""
    net = _network(s, "IPv4", "10.88.0.0/24")
    if net.version != 4:
        raise ConfigError(f"subnet {s}: only IPv4 subnets are supported")
    if net.plen > 30:
        raise ConfigError(f"subnet {s}: too small (at most /30: a gateway and one container)")
    return net.address, net.plen


def parse_subnet6(s: str) -> tuple[str, int]:
    """'fd00:77::/64' -> ('fd00:77::', 64); ConfigError unless an IPv6 network of /64 to /120
    with host bits clear. (Docker accepts larger prefixes too; /64 is what SLAAC-free ULAs use.)"""
    net = _network(s, "IPv6", "fd00:77::/64")
    if net.version != 6:
        raise ConfigError(f"subnet {s}: not an IPv6 subnet")
    if not 64 <= net.plen <= 120:
        raise ConfigError(f"subnet {s}: IPv6 subnets must be /64 to /120")
    return net.address, net.plen


def is_v6(s: str) -> bool:
    return ":" in s


def ula_for(name: str, taken: list[str]) -> str:
    """A ULA /64 for a network created with --ipv6 and no IPv6 subnet: the /48 of RFC 4193
    (fd + a 40-bit global ID, here from a hash of the network name, so it is stable across
    re-creations), subnet ID 0, or the next free subnet ID if another network has it.
    Docker (27+) takes a /64 from its default IPv6 pool, a ULA /48 derived from the host
    ID instead; both are only reachable from outside through published ports."""
    import hashlib

    gid = hashlib.sha256(name.encode()).digest()[:5]
    prefix = inet.Prefix(inet.V6, int.from_bytes(b"\xfd" + gid, "big") << 80, 48)
    used = [inet.prefix(t, strict=False) for t in taken if is_v6(t)]
    for cand in prefix.subnets(64):
        if not any(cand.overlaps(u) for u in used):
            return str(cand)
    raise ConfigError("no free IPv6 /64 for this network; give one with --subnet")


def contains(subnet: str, address: str) -> bool:
    """address is inside subnet; False for anything malformed."""
    return inet.contains(subnet, address)


def gateway_of(subnet: str) -> str:
    """The first usable address of subnet (Docker's default gateway)."""
    net = inet.prefix(subnet)
    return inet.to_text(net.version, net.network + 1)


def pick_subnet(pool: list[str], taken: list[str]) -> str:
    """The first subnet of pool that overlaps none of taken (host routes' destinations, other
    networks' subnets). The default route 0.0.0.0/0 overlaps everything and is ignored;
    IPv6 and malformed entries are ignored too."""
    used = []
    for t in taken:
        try:
            n = inet.prefix(t, strict=False)
        except ValueError:
            continue
        if n.version == 4 and n.plen > 0:
            used.append(n)
    for cand in pool:
        c = inet.prefix(cand)
        if not any(c.overlaps(u) for u in used):
            return cand
    raise ConfigError(
        "no free subnet in the address pool (all overlap host routes or other networks); pin one with --subnet"
        " (`default_subnet` in the config file for the default network)"
    )
