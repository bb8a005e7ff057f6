"""The network DNS responder's pure parts: wire format (golden bytes), the name table from a
fake state directory, answers, upstream selection, resolv.conf, aliases. No root needed."""

import os

import pytest

from minirt import ids, jsonenc, procfs
from minirt.errors import ConfigError
from minirt.net import dns, dnsd, inet
from minirt.net import dnswire as w

# dig-style query: id 0x1234, RD, one question "Db.backend" A IN
QUERY = bytes.fromhex("1234 0100 0001 0000 0000 0000 02 4462 07 6261636b656e64 00 0001 0001".replace(" ", ""))


def test_parse_query_golden():
    q = w.parse_query(QUERY)
    assert (q.id, q.name, q.qtype, q.qclass, q.rd) == (0x1234, "db.backend", w.A, w.CLASS_IN, True)
    assert q.raw_question == QUERY[12:]
    assert w.build_query(0x1234, "Db.backend", w.A) == QUERY


def test_response_golden():
    q = w.parse_query(QUERY)
    out = w.response(q, w.NOERROR, [(w.A, w.a_rdata("10.77.0.2"))], ttl=5)
    expected = (
        "1234 8500 0001 0001 0000 0000"  # QR AA RD, 1 question, 1 answer
        + QUERY[12:].hex()  # the question as sent (case kept)
        + "c00c 0001 0001 00000005 0004 0a4d0002"  # pointer, A, IN, ttl 5, 10.77.0.2
    ).replace(" ", "")
    assert out.hex() == expected
    assert w.parse_response(out) == (0x1234, w.NOERROR, [(w.A, bytes([10, 77, 0, 2]))])
    nx = w.response(q, w.NXDOMAIN)
    assert nx[:12].hex() == "123485030001000000000000"


@pytest.mark.parametrize(
    "data, qid",
    [
        (b"\x12", None),  # shorter than a header
        (bytes.fromhex("1234 8100 0001 0000 0000 0000".replace(" ", "")) + QUERY[12:], 0x1234),  # a response
        (bytes.fromhex("1234 0100 0002 0000 0000 0000".replace(" ", "")) + QUERY[12:], 0x1234),  # two questions
        (QUERY[:14], 0x1234),  # truncated label
        (QUERY[:12] + b"\xc0\x0c\x00\x01\x00\x01", 0x1234),  # compressed question
    ],
)
def test_parse_rejects(data, qid):
    with pytest.raises(w.FormatError) as e:
        w.parse_query(data)
    assert e.value.qid == qid
    err = w.error_response(data, w.FORMERR)
    assert (err is None) == (qid is None)
    if err:
        assert err[:2] == b"\x12\x34" and err[2] & 0x80 and err[3] & 0xF == w.FORMERR and err[4:] == bytes(8)


def test_aaaa_rdata():
    assert w.aaaa_rdata("fd00::2") == bytes.fromhex("fd000000000000000000000000000002")


@pytest.fixture
def state(tmp_path):
    """A fake MINIRT_ROOT: network `backend` with a live lease (this test process as owner),
    a dead one, a v6 lease, and the container records."""
    root = str(tmp_path)
    me = {"pid": os.getpid(), "start_time": procfs.start_time(os.getpid())}
    dead = {"pid": os.getpid(), "start_time": 1}
    live_id, dead_id = "a" * 64, "b" * 64
    os.makedirs(f"{root}/networks/backend/leases")
    os.makedirs(f"{root}/networks/backend/leases6")

    def lease(sub, addr, cid, owner):
        with open(f"{root}/networks/backend/{sub}/{addr}", "w") as f:
            f.write(jsonenc.dumps({"container": cid, **owner}))

    lease("leases", "10.77.0.2", live_id, me)
    lease("leases6", "fd00::2", live_id, me)
    lease("leases", "10.77.0.3", dead_id, dead)
    with open(f"{root}/networks/backend/leases/last_reserved", "w") as f:
        f.write("10.77.0.3")
    for cid, name, aliases in ((live_id, "db", ["Database"]), (dead_id, "gone", [])):
        os.makedirs(f"{root}/containers/{cid}")
        rec = {"id": cid, "name": name, "config": {"network": "backend", "aliases": aliases, "dns": ["198.51.100.9"]}}
        with open(f"{root}/containers/{cid}/state.json", "w") as f:
            f.write(jsonenc.dumps(rec))
    return root


def test_build_table_names_aliases_short_id_and_liveness(state):
    names, by_addr = dnsd.build_table(state, "backend")
    short = "a" * 12
    assert sorted(names) == sorted(["db", "db.backend", "database", "database.backend", short, short + ".backend"])
    e = names["database"][0]
    assert e.addrs == {w.A: ["10.77.0.2"], w.AAAA: ["fd00::2"]}
    assert by_addr["10.77.0.2"] is e and e.dns == ["198.51.100.9"]
    assert "gone" not in names  # its owner is dead


def test_aliases_are_per_network(state):
    """--network-alias counts on the network the container started on; `network connect --alias`
    ones on the network they were given for."""
    cid = "a" * 64
    path = f"{state}/containers/{cid}/state.json"
    rec = jsonenc.loads(open(path).read())
    rec["config"]["network"] = "front"
    rec["connected"] = [{"network": "backend", "aliases": ["Cache"]}, {"network": "other", "aliases": ["x"]}]
    with open(path, "w") as f:
        f.write(jsonenc.dumps(rec))
    names, _ = dnsd.build_table(state, "backend")
    assert "cache" in names and "cache.backend" in names
    assert "database" not in names and "x" not in names


def _ask(state, name, qtype=w.A):
    table = dnsd.Table(state, "backend")
    q = w.parse_query(w.build_query(7, name, qtype))
    out = dnsd.answer_local(q, table, "backend")
    return None if out is None else w.parse_response(out)


def test_answers(state):
    assert _ask(state, "DB") == (7, w.NOERROR, [(w.A, bytes([10, 77, 0, 2]))])
    assert _ask(state, "db.backend", w.AAAA) == (7, w.NOERROR, [(w.AAAA, w.aaaa_rdata("fd00::2"))])
    assert _ask(state, "db", 15) == (7, w.NOERROR, [])  # MX: NODATA
    assert _ask(state, "gone.backend") == (7, w.NXDOMAIN, [])
    assert _ask(state, "gone") is None  # unknown outside the zone: forward
    assert _ask(state, "example.com") is None


def test_table_sees_a_late_lease(state):
    table = dnsd.Table(state, "backend")
    assert table.lookup("late") == []
    cid = "c" * 64
    os.makedirs(f"{state}/containers/{cid}")
    with open(f"{state}/containers/{cid}/state.json", "w") as f:
        f.write(jsonenc.dumps({"id": cid, "name": "late", "config": {}}))
    with open(f"{state}/networks/backend/leases/10.77.0.4", "w") as f:
        f.write(jsonenc.dumps({"container": cid, "pid": os.getpid(), "start_time": procfs.start_time(os.getpid())}))
    table.sig = None  # same-tick mtime on a coarse filesystem: what REFRESH bounds
    assert [e.addrs[w.A] for e in table.lookup("late")] == [["10.77.0.4"]]


def test_upstreams(tmp_path):
    conf = tmp_path / "resolv.conf"
    conf.write_text("nameserver 127.0.0.53\nsearch lan\nnameserver 192.0.2.1\n")
    assert dnsd.read_upstreams({}, str(conf)) == ["127.0.0.53", "192.0.2.1"]
    assert dnsd.read_upstreams({"MINIRT_DNS_UPSTREAM": ""}, str(conf)) == []
    assert dnsd.read_upstreams({"MINIRT_DNS_UPSTREAM": "198.51.100.1, 198.51.100.2"}, str(conf)) == [
        "198.51.100.1", "198.51.100.2"]  # fmt: skip


def test_in_subnet():  # the responder's source check (dnsd used its own _in_subnet before net/inet.py)
    assert inet.contains("10.77.0.0/24", "10.77.0.9")
    assert not inet.contains("10.77.0.0/24", "10.78.0.9")


def test_network_resolv_conf():
    host = "nameserver 127.0.0.53\nsearch lan example.com\noptions edns0 trust-ad\n"
    assert dns.network_resolv_conf(host, "10.77.0.1") == (
        "nameserver 10.77.0.1\nsearch lan example.com\noptions edns0 trust-ad ndots:0\n")  # fmt: skip
    assert dns.network_resolv_conf("options ndots:2\n", "10.77.0.1") == "nameserver 10.77.0.1\noptions ndots:2\n"


@pytest.mark.parametrize("alias", ["db", "x", "my_db", "db.local", "A1-b"])
def test_alias_ok(alias):
    assert ids.check_alias(alias) == alias


@pytest.mark.parametrize("alias", ["", "-x", ".x", "x.", "a..b", "a b", "é", "x" * 64, "a/b"])
def test_alias_refused(alias):
    with pytest.raises(ConfigError):
        ids.check_alias(alias)
