"""Published ports: `-p` parsing (pure) and holding the host ports while they are published.

`-p [hostip:][hostport:]containerport[/tcp|udp]`, with ranges (`8080-8081:80-81`, or a
container range alone, which gets ephemeral host ports), as `docker run -p` takes it.

Reservation: since moby#48132 Docker binds a socket on each published host port so that no
host process (or other container) can take it; we do the same, in the process that owns the
container (the foreground minirt or the supervisor), without a proxy process: the socket is
bound and never used (DNAT happens before local delivery, so packets never reach it). A port
already bound elsewhere is refused before anything is set up; host port 0 lets the kernel
choose a free ephemeral port.
"""

import _socket

from minirt.errors import ConfigError, ConflictError
from minirt.net import inet


class PortMapping:
    __slots__ = ("host_ip", "host_port", "container_port", "proto")

    def __init__(self, host_ip: str, host_port: int, container_port: int, proto: str):
        self.host_ip, self.host_port, self.container_port, self.proto = host_ip, host_port, container_port, proto

    def to_dict(self) -> dict:
        return {"host_ip": self.host_ip, "host_port": self.host_port, "container_port": self.container_port,
                "proto": self.proto}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict) -> "PortMapping":
        return cls(d["host_ip"], d["host_port"], d["container_port"], d["proto"])

    def __str__(self) -> str:
        host = f"[{self.host_ip}]" if ":" in self.host_ip else self.host_ip
        return f"{self.container_port}/{self.proto} -> {host}:{self.host_port}"


def _range(text: str, spec: str) -> list[int]:
    lo, _, hi = text.partition("-")
    try:
        a, b = int(lo), int(hi or lo)
    except ValueError:
        raise ConfigError(f"port {spec!r}: {text!r} is not a port or a range") from None
    if not (0 < a <= b <= 65535):
        raise ConfigError(f"port {spec!r}: {text!r} is out of range 1-65535")
    return list(range(a, b + 1))


def parse(spec: str) -> list[PortMapping]:
    rest, _, proto = spec.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp"):
        raise ConfigError(f"port {spec!r}: protocol must be tcp or udp")
    if rest.startswith("["):  # [IPv6]:hostport:containerport, as docker run -p takes it
        v6, sep, tail = rest[1:].partition("]:")
        host, _, ctr = tail.partition(":")
        if not sep or not ctr:
            raise ConfigError(f"port {spec!r}: expected [IPv6]:hostport:containerport[/proto]")
        return _mappings(spec, _ipv6_host(v6, spec), host, ctr, proto)
    parts = rest.split(":")
    if len(parts) == 1:
        host_ip, host, ctr = "0.0.0.0", "", parts[0]
    elif len(parts) == 2:
        host_ip, host, ctr = "0.0.0.0", parts[0], parts[1]
    elif len(parts) == 3:
        host_ip, host, ctr = parts
    else:
        raise ConfigError(f"port {spec!r}: expected [hostip:][hostport:]containerport[/proto]")
    host_ip = host_ip or "0.0.0.0"
    try:
        inet.parse4(host_ip)
    except ValueError:
        raise ConfigError(f"port {spec!r}: host address {host_ip!r} is not an IPv4 address") from None
    return _mappings(spec, host_ip, host, ctr, proto)


def _ipv6_host(text: str, spec: str) -> str:
    """The canonical form of an IPv6 host address; ::1 and :: are refused (docs/networking.md, IPv6)."""
    try:
        addr = inet.format6(inet.parse6(text))
    except ValueError:
        raise ConfigError(f"port {spec!r}: host address {text!r} is not an IPv6 address") from None
    if addr == "::1":
        raise ConfigError(
            f"port {spec!r}: [::1] cannot be published without a proxy (the kernel does not route a "
            "loopback source off lo, and IPv6 has no route_localnet); use 127.0.0.1 or a host address"
        )
    if addr == "::":
        raise ConfigError(f"port {spec!r}: omit the address to publish on all addresses (IPv4 and IPv6)")
    return addr


def _mappings(spec: str, host_ip: str, host: str, ctr: str, proto: str) -> list[PortMapping]:
    ctr_ports = _range(ctr, spec)
    host_ports = _range(host, spec) if host else [0] * len(ctr_ports)
    if len(host_ports) != len(ctr_ports):
        raise ConfigError(f"port {spec!r}: host and container ranges differ in length")
    return [PortMapping(host_ip, h, c, proto) for h, c in zip(host_ports, ctr_ports)]


def reserve(mappings: list[PortMapping], ipv6: bool = False) -> list:
    """Bind a socket per mapping (filling in ephemeral host ports); the caller keeps them open
    while the ports are published. Refuses ports in use by anyone. With ipv6 (a dual-stack
    network) a mapping on all addresses also holds the port on `::` (IPV6_V6ONLY, so the two
    sockets do not collide); a mapping on an IPv6 host address holds it there."""
    held = []
    try:
        for m in mappings:
            kind = _socket.SOCK_STREAM if m.proto == "tcp" else _socket.SOCK_DGRAM
            binds = [(_socket.AF_INET, m.host_ip)]
            if ":" in m.host_ip:
                if not ipv6:
                    raise ConfigError(
                        f"port {m}: the container's network has no IPv6 (use one made with `minirt network create --ipv6`)"
                    )
                binds = [(_socket.AF_INET6, m.host_ip)]
            elif ipv6 and m.host_ip == "0.0.0.0":
                binds.append((_socket.AF_INET6, "::"))
            for family, ip in binds:
                _bind(held, m, family, kind, ip)
    except BaseException:
        for s in held:
            s.close()
        raise
    return held


def _bind(held: list, m: PortMapping, family: int, kind: int, ip: str) -> None:
    s = _socket.socket(family, kind)
    held.append(s)
    if family == _socket.AF_INET6:
        s.setsockopt(_socket.IPPROTO_IPV6, _socket.IPV6_V6ONLY, 1)
    try:
        s.bind((ip, m.host_port))
    except OSError as e:
        where = f"[{ip}]:{m.host_port}/{m.proto}" if ":" in ip else f"{ip}:{m.host_port}/{m.proto}"
        if e.errno == 98:  # EADDRINUSE
            raise ConflictError(f"port {where} is already in use (by another container or a host process)") from None
        if e.errno == 99:  # EADDRNOTAVAIL
            raise ConfigError(f"port {where}: {ip} is not an address of this host") from None
        raise ConflictError(f"port {where}: {e.strerror}") from None
    m.host_port = s.getsockname()[1]
