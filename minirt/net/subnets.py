"""Choosing a network's subnet: Docker's default pools, skipping anything already routed (pure).

Runs in: the minirt parent, once per network creation (so `ipaddress` may be imported here).
moby libnetwork/ipamutils: 172.17.0.0/16 … 172.31.0.0/16, then 192.168.0.0/16 split in /20s;
a pool is skipped when it overlaps a route of the host or another network (Docker checks the
host's routes the same way); the default route is not an overlap.
"""

import ipaddress

from minirt.errors import ConfigError

DEFAULT_POOL = [f"172.{n}.0.0/16" for n in range(17, 32)] + [
    str(s) for s in ipaddress.ip_network("192.168.0.0/16").subnets(new_prefix=20)
]


def parse_subnet(s: str) -> tuple[str, int]:
    try:
        net = ipaddress.ip_network(s, strict=True)
    except ValueError as e:
        if "host bits set" in str(e):
            raise ConfigError(f"subnet {s}: host bits set") from None
        raise ConfigError(f"subnet {s}: not a valid IPv4 subnet") from None
    if net.version != 4:
        raise ConfigError(f"subnet {s}: only IPv4 subnets are supported")
    if net.prefixlen > 30:
        raise ConfigError(f"subnet {s}: too small (at most /30)")
    return str(net.network_address), net.prefixlen


def contains(subnet: str, address: str) -> bool:
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(subnet)
    except ValueError:
        return False


def gateway_of(subnet: str) -> str:
    """The first usable address, as Docker's default."""
    return str(ipaddress.ip_network(subnet).network_address + 1)


def pick_subnet(pool: list[str], taken: list[str]) -> str:
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
        "no free subnet in the address pool (all overlap host routes or other networks); pin one in the config file"
    )
