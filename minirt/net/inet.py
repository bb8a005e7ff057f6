"""IPv4 and IPv6 addresses and prefixes as integers: the one parser minirt has (pure, leaf).

Runs in: anywhere, including the container start-up path (IPAM, netlink messages), so it costs
one `_socket` import and nothing else: no `ipaddress` (a few ms to import).

Texts are parsed strictly, the way lease file names and nft rules need them:
- IPv4 is a canonical dotted quad: four decimal octets, no leading zeros ("010.0.0.1" is not
  10.0.0.1 to everyone: inet_aton reads it as octal), no shorthand ("10.1").
- IPv6 is whatever inet_pton(3) takes (case, zero runs); format6() gives the canonical
  compressed lower-case form that inet_ntop(3) writes, which is the form lease file names,
  records and nft rules hold. `canonical6=True` refuses any other spelling.
- A prefix is ADDRESS/LEN with LEN in decimal ASCII digits (no netmask form, as Docker's
  Go net.ParseCIDR); a bare address is a full-length prefix (/32, /128), as in ipaddress.

Errors are ValueError with one line naming the text; callers turn them into their own
ConfigError wording.
"""

import _socket

V4, V6 = 4, 6
BITS = {V4: 32, V6: 128}


class HostBitsSet(ValueError):
    """ADDRESS/LEN has bits set after LEN; .network is the prefix that was probably meant."""

    def __init__(self, text: str, network: "Prefix"):
        super().__init__(f"{text!r} has host bits set")
        self.network = network


def parse4(text: str) -> int:
    parts = text.split(".") if isinstance(text, str) else ()
    if len(parts) != 4 or not all(
        p.isascii() and p.isdigit() and len(p) <= 3 and str(int(p)) == p and int(p) <= 255 for p in parts
    ):
        raise ValueError(f"not an IPv4 address: {text!r}")
    a, b, c, d = (int(p) for p in parts)
    return a << 24 | b << 16 | c << 8 | d


def format4(n: int) -> str:
    return f"{n >> 24 & 255}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


def parse6(text: str, canonical6: bool = False) -> int:
    """An IPv6 address as an int; with canonical6, only the form format6() writes."""
    try:
        n = int.from_bytes(_socket.inet_pton(_socket.AF_INET6, text), "big")
    except (OSError, TypeError, ValueError):
        raise ValueError(f"not an IPv6 address: {text!r}") from None
    if canonical6 and format6(n) != text:
        raise ValueError(f"not a canonical IPv6 address: {text!r}")
    return n


def format6(n: int) -> str:
    return _socket.inet_ntop(_socket.AF_INET6, n.to_bytes(16, "big"))


def version(text: str) -> int:
    """4 or 6 by the text's shape (':' means IPv6); says nothing about validity."""
    return V6 if ":" in text else V4


def parse(text: str, canonical6: bool = False) -> tuple[int, int]:
    """(version, int) of an IPv4 or IPv6 address."""
    if isinstance(text, str) and ":" in text:
        return V6, parse6(text, canonical6)
    return V4, parse4(text)


def to_text(ver: int, n: int) -> str:
    return format6(n) if ver == V6 else format4(n)


def canonical(text: str) -> str:
    """The canonical spelling of an IPv4 or IPv6 address (ValueError if it is none)."""
    return to_text(*parse(text))


def pack(text: str) -> bytes:
    """The 4 or 16 network-order bytes of an address (what netlink and DNS carry)."""
    ver, n = parse(text)
    return n.to_bytes(BITS[ver] // 8, "big")


def mask(ver: int, plen: int) -> int:
    bits = BITS[ver]
    return ((1 << bits) - 1) ^ ((1 << (bits - plen)) - 1)


class Prefix:
    """ADDRESS/LEN with host bits clear: version, network (int), plen."""

    __slots__ = ("version", "network", "plen")

    def __init__(self, ver: int, network: int, plen: int):
        self.version, self.network, self.plen = ver, network, plen

    @property
    def bits(self) -> int:
        return BITS[self.version]

    @property
    def size(self) -> int:
        return 1 << (self.bits - self.plen)

    @property
    def last(self) -> int:
        return self.network + self.size - 1

    @property
    def address(self) -> str:
        """The network address as text ("10.88.0.0", "fd00:77::")."""
        return to_text(self.version, self.network)

    def __str__(self) -> str:
        return f"{self.address}/{self.plen}"

    def __repr__(self) -> str:
        return f"Prefix({self})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Prefix) and (self.version, self.network, self.plen) == (
            other.version, other.network, other.plen)  # fmt: skip

    def __hash__(self) -> int:
        return hash((self.version, self.network, self.plen))

    def contains(self, text: str) -> bool:
        """The address `text` is inside; False for another family or anything malformed."""
        try:
            ver, n = parse(text)
        except ValueError:
            return False
        return ver == self.version and self.network <= n <= self.last

    def overlaps(self, other: "Prefix") -> bool:
        """Share at least one address (never across families)."""
        return self.version == other.version and self.network <= other.last and other.network <= self.last

    def subnets(self, plen: int):
        """The prefixes of length plen inside, in order (lazy)."""
        step = 1 << (self.bits - plen)
        for n in range(self.network, self.last + 1, step):
            yield Prefix(self.version, n, plen)


def prefix(text: str, strict: bool = True, canonical6: bool = False, bare: bool = True) -> Prefix:
    """Parse ADDRESS/LEN. strict: host bits set raise HostBitsSet (else they are cleared);
    bare: a lone address is a full-length prefix (else ValueError)."""
    if not isinstance(text, str):
        raise ValueError(f"not a prefix: {text!r}")
    address, slash, plen_text = text.partition("/")
    ver, n = parse(address, canonical6)
    bits = BITS[ver]
    if not slash:
        if not bare:
            raise ValueError(f"not a prefix (no /LEN): {text!r}")
        plen = bits
    elif plen_text.isascii() and plen_text.isdigit() and int(plen_text) <= bits:
        plen = int(plen_text)
    else:
        raise ValueError(f"not a prefix length of IPv{ver}: {text!r}")
    net = Prefix(ver, n & mask(ver, plen), plen)
    if strict and net.network != n:
        raise HostBitsSet(text, net)
    return net


def contains(subnet: str, address: str) -> bool:
    """address is inside subnet (host bits clear); False for anything malformed."""
    try:
        return prefix(subnet).contains(address)
    except ValueError:
        return False


def overlaps(a: str, b: str) -> bool:
    """Prefixes a and b (host bits clear) share an address; ValueError if either is malformed."""
    return prefix(a).overlaps(prefix(b))
