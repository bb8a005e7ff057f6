"""net/ipam.py: the pure round-robin allocator, lease files (stale reclaim, ownership) and
allocate() under concurrency. No root needed: everything lives in tmp_path."""

import multiprocessing
import os

import pytest

from minirt import jsonenc, procfs
from minirt.errors import ConflictError
from minirt.net import ipam

A, B, C = "a" * 64, "b" * 64, "c" * 64


def _me(cid: str) -> dict:
    """An owner that is alive: this test process."""
    return {"container": cid, "pid": os.getpid(), "start_time": procfs.start_time(os.getpid())}


def _dead(cid: str) -> dict:
    """An owner whose process has exited and been reaped (its pid + start time run no more)."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    started = procfs.start_time(pid)  # may be None if it is already gone: then any value is dead
    os.waitpid(pid, 0)
    return {"container": cid, "pid": pid, "start_time": started or 1}


# Allocator (pure)


def test_allocator_slash30_has_two_hosts_minus_the_gateway():
    a = ipam.Allocator("10.0.0.0/30", {"10.0.0.1"})
    assert list(a.next_candidates(None)) == ["10.0.0.2"]
    assert list(a.next_candidates("10.0.0.2")) == ["10.0.0.2"]
    assert list(ipam.Allocator("10.0.0.0/30", set()).next_candidates(None)) == ["10.0.0.1", "10.0.0.2"]


def test_allocator_slash24_starts_after_last_and_wraps():
    a = ipam.Allocator("10.88.0.0/24", {"10.88.0.1"})
    first = list(a.next_candidates(None))
    assert first[0] == "10.88.0.2" and first[-1] == "10.88.0.254" and len(first) == 253
    after = list(a.next_candidates("10.88.0.100"))
    assert after[:2] == ["10.88.0.101", "10.88.0.102"]
    assert after[-1] == "10.88.0.100"  # the last one handed out is tried last (round-robin)
    assert sorted(after) == sorted(first)
    wrapped = list(a.next_candidates("10.88.0.254"))
    assert wrapped[0] == "10.88.0.2" and wrapped[-1] == "10.88.0.254"
    # the gateway never comes out, not even when it is "last"
    assert list(a.next_candidates("10.88.0.1"))[0] == "10.88.0.2"
    assert "10.88.0.1" not in after and "10.88.0.0" not in after and "10.88.0.255" not in after


def test_allocator_ignores_a_last_outside_the_subnet():
    a = ipam.Allocator("10.88.0.0/24", {"10.88.0.1"})
    for last in ("192.168.9.9", "10.88.0.0", "10.88.0.255", "garbage"):
        assert next(a.next_candidates(last)) == "10.88.0.2", last


def test_allocator_large_subnet_and_reserved_in_the_middle():
    a = ipam.Allocator("172.17.0.0/16", {"172.17.0.1", "172.17.1.0"})
    got = list(a.next_candidates(None))
    assert len(got) == 65534 - 2 and got[0] == "172.17.0.2" and got[-1] == "172.17.255.254"
    assert "172.17.1.0" not in got and "172.17.0.255" in got  # .255 in a /16 is a host
    assert list(a.next_candidates("172.17.0.255"))[:2] == ["172.17.1.1", "172.17.1.2"]
    assert list(ipam.Allocator("10.1.0.0/20", set()).next_candidates("10.1.15.254"))[0] == "10.1.0.1"


def test_allocator_masks_host_bits_and_has_nothing_in_slash31_32():
    assert next(ipam.Allocator("10.0.0.77/29", set()).next_candidates(None)) == "10.0.0.73"
    assert list(ipam.Allocator("10.0.0.0/31", set()).next_candidates(None)) == []
    assert list(ipam.Allocator("10.0.0.0/32", set()).next_candidates(None)) == []
    with pytest.raises(ValueError):
        ipam.Allocator("10.0.0/24", set())


def test_allocator_usable():
    a = ipam.Allocator("10.0.0.0/29", {"10.0.0.1"})
    assert a.usable("10.0.0.6")
    for no in ("10.0.0.0", "10.0.0.1", "10.0.0.7", "10.0.1.2", "nope"):
        assert not a.usable(no), no


# LeaseStore


def test_reserve_release_and_owner(tmp_path):
    s = ipam.LeaseStore(str(tmp_path))
    assert s.owner_of("10.0.0.2") is None
    assert s.reserve("10.0.0.2", _me(A))
    assert s.owner_of("10.0.0.2") == _me(A)
    with open(tmp_path / "10.0.0.2") as f:  # the documented format: JSON, the owner's three keys
        assert jsonenc.loads(f.read()) == _me(A)
    assert not s.reserve("10.0.0.2", _me(B))  # a live owner keeps it
    assert s.owner_of("10.0.0.2")["container"] == A
    assert s.reserve("10.0.0.3", _me(B))
    assert s.leases() == {"10.0.0.2": _me(A), "10.0.0.3": _me(B)}
    assert s.release("10.0.0.2", A)
    assert not s.release("10.0.0.2", A)  # idempotent
    assert s.leases() == {"10.0.0.3": _me(B)}
    assert sorted(os.listdir(tmp_path)) == ["10.0.0.3"]  # no temporary file left behind


def test_release_by_a_non_owner_does_nothing(tmp_path):
    s = ipam.LeaseStore(str(tmp_path))
    assert s.reserve("10.0.0.2", _me(A))
    assert not s.release("10.0.0.2", B)
    assert s.release_owner(B) == []
    assert s.owner_of("10.0.0.2") == _me(A)


def test_release_owner_drops_only_that_containers_leases(tmp_path):
    s = ipam.LeaseStore(str(tmp_path))
    for addr, cid in (("10.0.0.2", A), ("10.0.0.3", B), ("10.0.0.4", A)):
        assert s.reserve(addr, _me(cid))
    assert sorted(s.release_owner(A)) == ["10.0.0.2", "10.0.0.4"]
    assert s.release_owner(A) == []  # idempotent
    assert list(s.leases()) == ["10.0.0.3"]
    assert ipam.LeaseStore(str(tmp_path / "missing")).release_owner(A) == []


def test_stale_lease_of_an_exited_process_is_reclaimed(tmp_path):
    s = ipam.LeaseStore(str(tmp_path))
    assert s.reserve("10.0.0.2", _dead(A))
    assert s.reserve("10.0.0.2", _me(B))
    assert s.owner_of("10.0.0.2") == _me(B)


def test_stale_lease_with_a_reused_pid_is_reclaimed(tmp_path):
    """Our own pid, but another start time: the pid was reused, the owner is gone."""
    s = ipam.LeaseStore(str(tmp_path))
    reused = dict(_me(A), start_time=procfs.start_time(os.getpid()) + 1)
    assert s.reserve("10.0.0.2", reused)
    assert s.reserve("10.0.0.2", _me(B))
    assert s.owner_of("10.0.0.2")["container"] == B


def test_damaged_lease_is_stale(tmp_path):
    (tmp_path / "10.0.0.2").write_text("{not json")
    (tmp_path / "10.0.0.3").write_text('["a list"]')
    s = ipam.LeaseStore(str(tmp_path))
    assert s.owner_of("10.0.0.2") == {}
    assert s.reserve("10.0.0.2", _me(A)) and s.reserve("10.0.0.3", _me(A))


def test_live_lease_is_not_reclaimed(tmp_path):
    s = ipam.LeaseStore(str(tmp_path))
    assert s.reserve("10.0.0.2", _me(A))
    for cid in (B, A):  # not even by the same container: the address is in use
        assert not s.reserve("10.0.0.2", _me(cid))
    assert s.owner_of("10.0.0.2") == _me(A)


def test_addresses_are_checked_before_touching_the_filesystem(tmp_path):
    s = ipam.LeaseStore(str(tmp_path / "leases"))
    for bad in ("../escape", "10.0.0", "10.0.0.256", "010.0.0.2", "10.0.0.+2"):
        with pytest.raises(ValueError):
            s.reserve(bad, _me(A))
    assert not (tmp_path / "escape").exists()


_barrier = None


def _set_barrier(barrier):
    """Pool initializer: a Barrier reaches workers by inheritance only, never through map()."""
    global _barrier
    _barrier = barrier


def _reclaim(args):
    d, n = args
    _barrier.wait()  # everyone finds the same stale lease at the same moment
    return ipam.LeaseStore(d).reserve("10.0.0.2", _me(f"{n:064x}"))


def test_one_of_many_racing_reclaimers_wins_a_stale_lease(tmp_path):
    """No network lock here: the per-lease protocol alone must give the address to one."""
    ctx = multiprocessing.get_context("fork")
    for _round in range(5):
        s = ipam.LeaseStore(str(tmp_path))
        assert s.reserve("10.0.0.2", _dead(A))
        with ctx.Pool(8, _set_barrier, (ctx.Barrier(8, timeout=20),)) as pool:
            won = pool.map(_reclaim, [(str(tmp_path), n) for n in range(8)], chunksize=1)
        assert won.count(True) == 1, won
        winner = s.owner_of("10.0.0.2")["container"]
        assert winner == f"{won.index(True):064x}"
        os.unlink(tmp_path / "10.0.0.2")


def test_a_reclaimer_waits_for_the_lease_lock_then_looks_again(tmp_path):
    """The race above, in a fixed order: we hold the stale lease's lock (as a first reclaimer
    would), a child that wants the address must wait, and once we have replaced the lease
    with a live one and unlocked, the child must find that owner and give up."""
    import fcntl
    import select
    import signal
    import time

    s = ipam.LeaseStore(str(tmp_path))
    assert s.reserve("10.0.0.2", _dead(A))
    fd = os.open(tmp_path / "10.0.0.2", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    r, w = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(fd)  # an inherited fd shares our lock: the child would wait for itself
        os.close(r)
        won = ipam.LeaseStore(str(tmp_path)).reserve("10.0.0.2", _me(C))
        os.write(w, b"1" if won else b"0")
        os._exit(0)
    os.close(w)
    try:
        # until the kernel lists the child as blocked on a flock (a "->" line of /proc/locks)
        deadline = time.monotonic() + 10
        while not _blocked_on_flock(child):
            assert time.monotonic() < deadline, "the child never waited for the lease lock"
            time.sleep(0.005)
        os.set_blocking(r, False)
        with pytest.raises(BlockingIOError):
            os.read(r, 1)  # still waiting for our lock
        os.unlink(tmp_path / "10.0.0.2")
        assert s.reserve("10.0.0.2", _me(B))
    finally:
        os.close(fd)  # unlock
        answered, _, _ = select.select([r], [], [], 10)
        answer = os.read(r, 1) if answered else b"(no answer in 10 s)"
        os.close(r)
        if not answered:
            os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
    assert answer == b"0"
    assert s.owner_of("10.0.0.2") == _me(B)


def test_sweep_removes_temporary_files_of_dead_processes(tmp_path):
    dead_pid = _dead(A)["pid"]
    (tmp_path / f".10.0.0.2.{dead_pid}.tmp").write_text("{}")
    (tmp_path / f".10.0.0.3.{os.getpid()}.tmp").write_text("{}")
    ipam.LeaseStore(str(tmp_path)).sweep_tmp()
    assert os.listdir(tmp_path) == [f".10.0.0.3.{os.getpid()}.tmp"]


def test_last_reserved(tmp_path):
    s = ipam.LeaseStore(str(tmp_path))
    assert s.last_reserved() is None
    s.set_last_reserved("10.0.0.7")
    s.set_last_reserved("10.0.0.9")
    assert s.last_reserved() == "10.0.0.9"
    assert os.listdir(tmp_path) == ["last_reserved"]
    assert s.leases() == {}  # not mistaken for a lease


# allocate / release_owner (the network lock)


def test_allocate_round_robin_and_release(tmp_path):
    d = str(tmp_path)
    assert ipam.allocate(d, "10.0.0.0/24", "10.0.0.1", _me(A)) == "10.0.0.2"
    assert ipam.allocate(d, "10.0.0.0/24", "10.0.0.1", _me(B)) == "10.0.0.3"
    assert ipam.release_owner(d, A) == ["10.0.0.2"]
    assert ipam.release_owner(d, A) == []
    # round-robin: A's freed address is not handed out again straight away
    assert ipam.allocate(d, "10.0.0.0/24", "10.0.0.1", _me(C)) == "10.0.0.4"
    assert (tmp_path / "lock").exists() and (tmp_path / "leases" / "last_reserved").read_text() == "10.0.0.4"


def test_allocate_prefers_a_free_previous_address(tmp_path):
    d = str(tmp_path)
    assert ipam.allocate(d, "10.0.0.0/24", "10.0.0.1", _me(A), prefer="10.0.0.50") == "10.0.0.50"
    assert ipam.allocate(d, "10.0.0.0/24", "10.0.0.1", _me(B), prefer="10.0.0.50") == "10.0.0.2"  # taken
    for bad in ("10.0.0.1", "10.0.0.255", "10.9.9.9"):  # gateway, broadcast, another subnet
        assert ipam.allocate(d, "10.0.0.0/24", "10.0.0.1", _me(C), prefer=bad) != bad


def test_release_owner_of_a_removed_network_does_not_recreate_it(tmp_path):
    assert ipam.release_owner(str(tmp_path / "gone"), A) == []
    assert not (tmp_path / "gone").exists()


def test_exhausting_a_slash29(tmp_path):
    d = str(tmp_path)
    got = [ipam.allocate(d, "10.0.0.0/29", "10.0.0.1", _me(f"{n:064x}")) for n in range(5)]
    assert got == ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
    with pytest.raises(ConflictError, match=r"no free address in 10\.0\.0\.0/29"):
        ipam.allocate(d, "10.0.0.0/29", "10.0.0.1", _me(C))
    assert ipam.release_owner(d, f"{2:064x}") == ["10.0.0.4"]
    assert ipam.allocate(d, "10.0.0.0/29", "10.0.0.1", _me(C)) == "10.0.0.4"


def test_exhausted_subnet_reclaims_a_stale_lease(tmp_path):
    d = str(tmp_path)
    for n in range(4):
        ipam.allocate(d, "10.0.0.0/29", "10.0.0.1", _me(f"{n:064x}"))
    ipam.allocate(d, "10.0.0.0/29", "10.0.0.1", _dead(A))  # 10.0.0.6, its owner now gone
    assert ipam.allocate(d, "10.0.0.0/29", "10.0.0.1", _me(B)) == "10.0.0.6"


def _allocate_in_child(args):
    d, n = args
    _barrier.wait()  # 50 tasks in 50 distinct processes, all starting together
    return ipam.allocate(d, "10.9.0.0/24", "10.9.0.1", _me(f"{n:064x}")), os.getpid()


def test_50_processes_allocating_at_once_get_50_addresses(tmp_path):
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(50, _set_barrier, (ctx.Barrier(50, timeout=20),)) as pool:
        got = pool.map(_allocate_in_child, [(str(tmp_path), n) for n in range(50)], chunksize=1)
    addrs = [a for a, _pid in got]
    assert len({pid for _a, pid in got}) == 50  # really 50 processes, each its own owner
    assert len(set(addrs)) == 50
    leases = [x for x in os.listdir(tmp_path / "leases") if x[0].isdigit()]
    assert sorted(leases) == sorted(addrs)
    store = ipam.LeaseStore(str(tmp_path / "leases"))
    assert {store.owner_of(a)["pid"] for a in addrs} == {pid for _a, pid in got}
    assert sorted(addrs, key=lambda a: int(a.rsplit(".", 1)[1])) == [f"10.9.0.{n}" for n in range(2, 52)]


def test_mac_for():
    assert ipam.mac_for("172.17.0.2") == "02:42:ac:11:00:02"
    assert ipam.mac_for("10.88.255.254") == "02:42:0a:58:ff:fe"
    with pytest.raises(ValueError):
        ipam.mac_for("10.88.0")


def _blocked_on_flock(pid: int) -> bool:
    """/proc/locks lists a waiter as `N: -> FLOCK ADVISORY WRITE PID MAJ:MIN:INODE 0 EOF`
    (proc(5))."""
    with open("/proc/locks") as f:
        return any(fields[1:3] == ["->", "FLOCK"] and fields[5] == str(pid) for fields in map(str.split, f))
