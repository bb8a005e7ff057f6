"""IPAM (pure allocator + lease files), subnet picking and resolv.conf: no root needed."""

import multiprocessing
import os

import pytest

from minirt import procfs
from minirt.errors import ConfigError, ConflictError
from minirt.net import dns, ipam, subnets


def test_allocator_order_wrap_and_exclusions():
    a = ipam.Allocator("10.0.0.0/29", {"10.0.0.1"})
    assert list(a.next_candidates(None)) == ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
    assert list(a.next_candidates("10.0.0.4")) == ["10.0.0.5", "10.0.0.6", "10.0.0.2", "10.0.0.3", "10.0.0.4"]
    assert list(a.next_candidates("10.0.0.6"))[0] == "10.0.0.2"
    assert list(a.next_candidates("192.168.9.9"))[0] == "10.0.0.2"  # a stale last from another subnet
    big = list(ipam.Allocator("172.17.0.0/16", {"172.17.0.1"}).next_candidates(None))
    assert len(big) == 65533 and big[0] == "172.17.0.2" and big[-1] == "172.17.255.254"


def _dead_owner() -> dict:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    started = procfs.start_time(pid)
    os.waitpid(pid, 0)
    return {"container": "dead" * 16, "pid": pid, "start_time": started or 1}


def _me(cid: str) -> dict:
    return {"container": cid, "pid": os.getpid(), "start_time": procfs.start_time(os.getpid())}


def test_lease_store(tmp_path):
    s = ipam.LeaseStore(str(tmp_path))
    assert s.reserve("10.0.0.2", _me("a" * 64))
    assert not s.reserve("10.0.0.2", _me("b" * 64))  # a live owner keeps it
    assert s.owner_of("10.0.0.2")["container"] == "a" * 64
    s.release("10.0.0.2", "b" * 64)  # not the owner: nothing happens
    assert s.owner_of("10.0.0.2") is not None
    s.release_owner("a" * 64)
    s.release_owner("a" * 64)
    assert s.leases() == {}


def test_stale_lease_is_reclaimed(tmp_path):
    s = ipam.LeaseStore(str(tmp_path))
    assert s.reserve("10.0.0.2", _dead_owner())
    assert s.reserve("10.0.0.2", _me("c" * 64))
    assert s.owner_of("10.0.0.2")["container"] == "c" * 64


def _alloc(args):
    d, n = args
    owner = {"container": f"{n:064x}", "pid": os.getpid(), "start_time": procfs.start_time(os.getpid())}
    return ipam.allocate(d, "10.9.0.0/24", "10.9.0.1", owner)


def test_50_parallel_allocations_never_share(tmp_path):
    ctx = multiprocessing.get_context("fork")
    # keep each owner alive until all allocated: one process per allocation, joined together
    with ctx.Pool(50) as pool:
        got = pool.map(_alloc, [(str(tmp_path), n) for n in range(50)])
    assert len(set(got)) == 50
    assert len([x for x in os.listdir(tmp_path / "leases") if x[0].isdigit()]) == 50


def test_exhaustion(tmp_path):
    for n in range(5):  # a /29 has 6 hosts, one of them the gateway
        ipam.allocate(str(tmp_path), "10.0.0.0/29", "10.0.0.1", _me(f"{n:064x}"))
    with pytest.raises(ConflictError, match="no free address in 10.0.0.0/29"):
        ipam.allocate(str(tmp_path), "10.0.0.0/29", "10.0.0.1", _me("f" * 64))
    ipam.release_owner(str(tmp_path), f"{2:064x}")
    assert ipam.allocate(str(tmp_path), "10.0.0.0/29", "10.0.0.1", _me("f" * 64)) == "10.0.0.4"


def test_mac_for():
    assert ipam.mac_for("172.17.0.2") == "02:42:ac:11:00:02"


def test_subnets():
    assert subnets.pick_subnet(subnets.DEFAULT_POOL, []) == "172.17.0.0/16"
    assert subnets.pick_subnet(subnets.DEFAULT_POOL, ["0.0.0.0/0", "172.17.3.0/24", "172.18.0.0/15"]) == "172.20.0.0/16"
    assert subnets.DEFAULT_POOL[15] == "192.168.0.0/20" and len(subnets.DEFAULT_POOL) == 15 + 16
    with pytest.raises(ConfigError, match="no free subnet"):
        subnets.pick_subnet(["10.0.0.0/24"], ["10.0.0.0/8"])
    assert subnets.parse_subnet("10.88.0.0/24") == ("10.88.0.0", 24)
    for bad, msg in (("10.0.0.1/24", "host bits set"), ("nope", "not a valid"), ("fd00::/64", "only IPv4"),
                     ("10.0.0.0/31", "too small")):  # fmt: skip
        with pytest.raises(ConfigError, match=msg):
            subnets.parse_subnet(bad)
    assert subnets.gateway_of("10.88.0.0/24") == "10.88.0.1"


def test_resolv_conf():
    host = "search lan\nnameserver 127.0.0.53\nnameserver 192.0.2.53\noptions edns0\n"
    assert dns.container_resolv_conf(host, []) == "nameserver 192.0.2.53\nsearch lan\noptions edns0\n"
    only_local = dns.container_resolv_conf("nameserver 127.0.0.53\n", [])
    assert "nameserver" not in only_local.replace("nameservers", "") and "--dns" in only_local
    assert dns.container_resolv_conf(host, ["203.0.113.9"]).startswith("nameserver 203.0.113.9\nsearch lan")
