"""Choosing and checking a network's subnet: Docker's default pools, minus what is in use (pure).

Runs in: host, minirt parent, once per network creation (not per container), which is why the
stdlib `ipaddress` (a few ms to import) is acceptable here and nowhere on the start-up path.

Be aware:
- The pools are IPv4; IPv6 subnets are given (--subnet) or a ULA /64 (ula_for).
- pick_subnet() counts every prefix it is given except the default route. Which host routes to
  pass is the caller's choice: Docker before v23 checked all non-default routes; since moby PR
  #42598 (libnetwork/netutils/utils_linux.go, InferReservedNetworks) only on-link routes and
  the resolv.conf nameservers.
"""

import ipaddress

from minirt.errors import ConfigError

# moby libnetwork/ipamutils, local scope: 172.17.0.0/16 ... 172.31.0.0/16, each a network, then
# 192.168.0.0/16 split into /20s: 31 networks in all.
DEFAULT_POOL = [f"172.{n}.0.0/16" for n in range(17, 32)] + [f"192.168.{n}.0/20" for n in range(0, 256, 16)]


def _network(s: str, family: str, example: str):
    """The ipaddress network named by s (host bits clear), or one ConfigError line."""
    try:
        return ipaddress.ip_network(s, strict=True)
    except (ValueError, TypeError) as e:
        if "host bits set" in str(e):
            meant = ipaddress.ip_interface(s).network
            raise ConfigError(f"subnet {s}: host bits set (did you mean {meant}?)") from None
        raise ConfigError(f"subnet {s}: not a valid {family} subnet (expected CIDR such as {example})") from None


def parse_subnet(s: str) -> tuple[str, int]:
    """'10.88.0.0/24' -> ('10.88.0.0', 24); ConfigError for anything that is not an IPv4
    network with room for a gateway and a container (/30 at most) or has host bits set."""
    net = _network(s, "IPv4", "10.88.0.0/24")
    if net.version != 4:
        raise ConfigError(f"subnet {s}: only IPv4 subnets are supported")
    if net.prefixlen > 30:
        raise ConfigError(f"subnet {s}: too small (at most /30: a gateway and one container)")
    return str(net.network_address), net.prefixlen


def parse_subnet6(s: str) -> tuple[str, int]:
    """'fd00:77::/64' -> ('fd00:77::', 64); ConfigError unless an IPv6 network of /64 to /120
    with host bits clear. (Docker accepts larger prefixes too; /64 is what SLAAC-free ULAs use.)"""
    net = _network(s, "IPv6", "fd00:77::/64")
    if net.version != 6:
        raise ConfigError(f"subnet {s}: not an IPv6 subnet")
    if not 64 <= net.prefixlen <= 120:
        raise ConfigError(f"subnet {s}: IPv6 subnets must be /64 to /120")
    return str(net.network_address), net.prefixlen


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
    prefix = ipaddress.ip_network((int.from_bytes(b"\xfd" + gid, "big") << 80, 48))
    used = [ipaddress.ip_network(t, strict=False) for t in taken if is_v6(t)]
    for cand in prefix.subnets(new_prefix=64):
        if not any(cand.overlaps(u) for u in used):
            return str(cand)
    raise ConfigError("no free IPv6 /64 for this network; give one with --subnet")


def contains(subnet: str, address: str) -> bool:
    """address is inside subnet; False for anything malformed."""
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(subnet)
    except ValueError:
        return False


def gateway_of(subnet: str) -> str:
    """The first usable address of subnet (Docker's default gateway)."""
    return str(ipaddress.ip_network(subnet).network_address + 1)


def pick_subnet(pool: list[str], taken: list[str]) -> str:
    """The first subnet of pool that overlaps none of taken (host routes' destinations, other
    networks' subnets). The default route 0.0.0.0/0 overlaps everything and is ignored;
    IPv6 and malformed entries are ignored too."""
    used = []
    for t in taken:
        try:
            n = ipaddress.ip_network(t, strict=False)
        except ValueError:
            continue
        if n.version == 4 and n.prefixlen > 0:
            used.append(n)
    for cand in pool:
        c = ipaddress.ip_network(cand)
        if not any(c.overlaps(u) for u in used):
            return cand
    raise ConfigError(
        "no free subnet in the address pool (all overlap host routes or other networks); pin one with --subnet"
        " (`default_subnet` in the config file for the default network)"
    )
