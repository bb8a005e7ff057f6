"""The few pieces of the DNS wire format (RFC 1035) the network responder needs (pure).

Runs in: anywhere; no I/O. Imported by the responder only (net/dnsd.py), never on the default
network's start-up path. No dnspython: one question in, A/AAAA records out is all we speak.

    header (12 bytes)   id, flags (QR OPCODE AA TC RD RA Z RCODE), qdcount, ancount, nscount, arcount
    question            qname (length-prefixed labels, 0-terminated), qtype, qclass
    answer              name (a pointer to the question: 0xC00C), type, class, ttl, rdlength, rdata

Parsing is strict about what we answer (one question, no compression in the question, as every
stub resolver sends) and tolerant about the rest: a query we cannot parse gets FORMERR when
at least its id is readable, and nothing otherwise (RFC 1035 4.1.1).
"""

import struct

from minirt.net import inet

A, AAAA, PTR = 1, 28, 12
CLASS_IN = 1
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5

_HEADER = struct.Struct("!HHHHHH")


class Query:
    """One parsed question: `name` lowercased without the trailing dot, `raw_question` the
    question section as sent (echoed back verbatim, so the case the client used is kept:
    RFC 4343 and the 0x20 trick some resolvers play)."""

    __slots__ = ("id", "flags", "name", "qtype", "qclass", "raw_question")

    def __init__(self, qid: int, flags: int, name: str, qtype: int, qclass: int, raw_question: bytes):
        self.id, self.flags, self.name, self.qtype, self.qclass = qid, flags, name, qtype, qclass
        self.raw_question = raw_question

    @property
    def rd(self) -> bool:
        return bool(self.flags & 0x0100)


class FormatError(ValueError):
    """The message is not a query we can answer; `qid` is set when the header was readable."""

    def __init__(self, message: str, qid: int | None = None):
        super().__init__(message)
        self.qid = qid


def parse_query(data: bytes) -> Query:
    if len(data) < 12:
        raise FormatError("shorter than a DNS header")
    qid, flags, qdcount, _an, _ns, _ar = _HEADER.unpack_from(data)
    if flags & 0x8000:
        raise FormatError("a response, not a query", qid)
    if (flags >> 11) & 0xF != 0:
        raise FormatError("opcode is not QUERY", qid)
    if qdcount != 1:
        raise FormatError(f"{qdcount} questions (we answer exactly one)", qid)
    labels = []
    i = 12
    while True:
        if i >= len(data):
            raise FormatError("question runs past the message", qid)
        n = data[i]
        i += 1
        if n == 0:
            break
        if n & 0xC0:
            raise FormatError("compressed or extended label in the question", qid)
        if i + n > len(data):
            raise FormatError("label runs past the message", qid)
        labels.append(data[i : i + n])
        i += n
    if i + 4 > len(data):
        raise FormatError("question has no type and class", qid)
    qtype, qclass = struct.unpack_from("!HH", data, i)
    try:
        name = b".".join(labels).decode("ascii").lower()
    except UnicodeDecodeError:
        name = b".".join(labels).decode("latin-1").lower()  # never matches a container name
    return Query(qid, flags, name, qtype, qclass, data[12 : i + 4])


def encode_name(name: str) -> bytes:
    out = b""
    for label in name.rstrip(".").split("."):
        if label:
            raw = label.encode("ascii")
            if len(raw) > 63:
                raise ValueError(f"label too long: {label!r}")
            out += bytes([len(raw)]) + raw
    return out + b"\0"


def build_query(qid: int, name: str, qtype: int, rd: bool = True) -> bytes:
    """A stub query (for tests and the fake upstream)."""
    return _HEADER.pack(qid, 0x0100 if rd else 0, 1, 0, 0, 0) + encode_name(name) + struct.pack("!HH", qtype, CLASS_IN)


def response(q: Query, rcode: int, answers: list[tuple[int, bytes]] = (), ttl: int = 0, aa: bool = True,
             ra: bool = False) -> bytes:  # fmt: skip
    """The answer to q: header, q's question as sent, then one record per (type, rdata) with
    the name a pointer to the question (0xC00C)."""
    flags = 0x8000 | (0x0400 if aa else 0) | (q.flags & 0x0100) | (0x0080 if ra else 0) | (rcode & 0xF)
    out = [_HEADER.pack(q.id, flags, 1, len(answers), 0, 0), q.raw_question]
    for rtype, rdata in answers:
        out.append(struct.pack("!HHHIH", 0xC00C, rtype, CLASS_IN, ttl, len(rdata)) + rdata)
    return b"".join(out)


def error_response(data: bytes, rcode: int) -> bytes | None:
    """FORMERR/SERVFAIL for a message we could not parse: header only, the question dropped;
    None when even the id is unreadable (RFC 1035: then no answer at all)."""
    if len(data) < 12:
        return None
    qid, flags = struct.unpack_from("!HH", data)
    return _HEADER.pack(qid, 0x8000 | (flags & 0x0100) | (rcode & 0xF), 0, 0, 0, 0)


def a_rdata(addr: str) -> bytes:
    return inet.parse4(addr).to_bytes(4, "big")


def aaaa_rdata(addr: str) -> bytes:
    return inet.parse6(addr).to_bytes(16, "big")


def parse_response(data: bytes) -> tuple[int, int, list[tuple[int, bytes]]]:
    """(id, rcode, [(type, rdata)...]) of a response whose answers point at the question (what
    we send); for tests."""
    qid, flags, qd, an, _ns, _ar = _HEADER.unpack_from(data)
    i = 12
    for _ in range(qd):
        while data[i]:
            i += 1 + data[i]
        i += 5
    answers = []
    for _ in range(an):
        if data[i] & 0xC0:
            i += 2
        else:
            while data[i]:
                i += 1 + data[i]
            i += 1
        rtype, _cls, _ttl, rdlen = struct.unpack_from("!HHIH", data, i)
        i += 10
        answers.append((rtype, data[i : i + rdlen]))
        i += rdlen
    return qid, flags & 0xF, answers
