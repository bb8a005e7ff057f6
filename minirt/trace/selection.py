"""What `minirt trace` follows: a container, a published port, a network, or all of minirt's
networks, turned into matches the trace rules test (rules.py).

Runs in: the `minirt trace` process. Pure but for the callers of the for_*() builders, which hand
in records read from the state directory and elements listed from the kernel.

The trace rules run at prerouting/output priority -350, before conntrack (-200) and before any
NAT, so they see what arrives, not what it becomes:

    a container      its addresses as source or destination (every network, IPv4 and IPv6),
                     and its published ports as they arrive (to a local address, the host
                     port; before the DNAT)
    --port [IP:]P    packets to that host port on a local address (or on IP), and the replies
                     of the container(s) it is published to at the time the trace starts
    --network NET    the subnet(s) as source or destination, and the published ports whose
                     target lies in the subnet
    (nothing)        every network of this state root, as --network

Addresses, not interfaces: matching a veth or bridge by name would also trace the host's own
IPv6 neighbour discovery and MLD on it, noise in every trace; a container's packets carry its
addresses anyway.
"""

from minirt.errors import ConfigError
from minirt.net import inet


class Match:
    """One thing to trace. kind: "saddr" | "daddr" | "port" | "reply".

    saddr/daddr: value is an address or a prefix; port: (ip or None,
    proto, port), a packet to a published host port; reply: (address, proto, port), a packet from
    a published port's target."""

    __slots__ = ("kind", "value", "why")

    def __init__(self, kind: str, value, why: str):
        self.kind, self.value, self.why = kind, value, why

    def __eq__(self, other) -> bool:
        return (self.kind, self.value) == (other.kind, other.value)

    def __hash__(self) -> int:
        return hash((self.kind, self.value))

    def __repr__(self) -> str:
        return f"Match({self.kind!r}, {self.value!r}, {self.why!r})"


def parse_port(spec: str) -> tuple[str | None, str, int]:
    """`[IP:]PORT[/proto]` (as the host side of `-p`) -> (ip or None, proto, port)."""
    rest, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp"):
        raise ConfigError(f"trace --port {spec!r}: protocol must be tcp or udp")
    ip = None
    if rest.startswith("["):
        ip, sep, port = rest[1:].partition("]:")
        if not sep:
            raise ConfigError(f"trace --port {spec!r}: expected [IPv6]:PORT[/proto]")
    elif ":" in rest:
        ip, _, port = rest.rpartition(":")
    else:
        port = rest
    if ip is not None:
        try:
            ip = inet.canonical(ip)
        except ValueError:
            raise ConfigError(f"trace --port {spec!r}: {ip!r} is not an IP address") from None
    if not port.isdigit() or not 0 < int(port) <= 65535:
        raise ConfigError(f"trace --port {spec!r}: {port!r} is not a port (1-65535)")
    return ip, proto, int(port)


def _element_port(name: str, key: str) -> tuple[str | None, str, int]:
    """A published element's key -> (ip or None, proto, port): "tcp . 8080" or
    "127.0.0.1 . tcp . 8080" (firewall/ports.py)."""
    parts = [p.strip() for p in key.split(" . ")]
    ip = parts[0] if len(parts) == 3 else None
    return ip, parts[-2], int(parts[-1])


def _element_target(value: str) -> tuple[str, int]:
    addr, port = (p.strip() for p in value.split(" . "))
    return addr, int(port)


def for_container(name: str, rec: dict, plan: list[dict]) -> list[Match]:
    """A container's record and teardown plan (teardown.plan_of) -> its matches."""
    endpoints = [rec.get("network") or {}] + list(rec.get("connected") or [])
    out = []
    for e in endpoints:
        for key in ("address", "address6"):
            if e.get(key):
                out += [Match("saddr", e[key], f"from {name}"), Match("daddr", e[key], f"to {name}")]
    for st in plan:
        if st.get("undo") == "ports":
            for m, k, _v in st.get("elements") or []:
                ip, proto, port = _element_port(m, k)
                out.append(Match("port", (ip, proto, port), f"{name} published {proto}/{port}"))
    if not out:
        raise ConfigError(f"trace: container {name} has no network address to trace (--net none or host?)")
    return _unique(out)


def for_network(net, published: dict) -> list[Match]:
    """A network record (netrecord.Network) and the kernel's published elements
    ({(map, key): value}) -> its matches."""
    out = []
    for sn in (net.subnet, net.subnet6):
        if sn:
            out += [Match("saddr", sn, f"from {net.name}"), Match("daddr", sn, f"to {net.name}")]
    for (m, k), v in sorted(published.items()):
        addr, _ = _element_target(v)
        if any(sn and _contains(sn, addr) for sn in (net.subnet, net.subnet6)):
            ip, proto, port = _element_port(m, k)
            out.append(Match("port", (ip, proto, port), f"{net.name} published {proto}/{port}"))
    return _unique(out)


def for_port(spec: str, published: dict) -> list[Match]:
    ip, proto, port = parse_port(spec)
    out = [Match("port", (ip, proto, port), f"port {proto}/{port}")]
    for (m, k), v in sorted(published.items()):
        kip, kproto, kport = _element_port(m, k)
        if (kproto, kport) == (proto, port) and (ip is None or kip in (None, ip)):
            addr, cport = _element_target(v)
            out.append(Match("reply", (addr, proto, cport), f"replies of port {proto}/{port}"))
    return _unique(out)


def _contains(subnet: str, address: str) -> bool:
    try:
        return inet.contains(subnet, address)
    except ValueError:
        return False


def _unique(matches: list[Match]) -> list[Match]:
    seen, out = set(), []
    for m in matches:
        if m not in seen:
            seen.add(m)
            out.append(m)
    return out
