"""State store, rollback, liveness and the parent/child protocol (real fork + socketpair, no root)."""

import json
import multiprocessing
import os
import time

import pytest

from minirt import procfs
from minirt.errors import CleanupError, ConflictError, ExecError, InitError
from minirt.process.sync import NET_READY, NS_READY, Channel
from minirt.rollback import Rollback
from minirt.state import Store, atomic_write_json, rmtree


def record(cid: str, name: str) -> dict:
    return {"id": cid, "name": name, "status": "created"}


def test_store_dirs_names_and_remove(tmp_path):
    s = Store(str(tmp_path))
    d = s.make_dirs("a" * 64)
    assert sorted(os.listdir(d)) == ["merged", "upper", "work"]
    s.register(record("a" * 64, "web"))
    assert json.load(open(f"{d}/state.json"))["name"] == "web"
    s.make_dirs("b" * 64)
    with pytest.raises(ConflictError, match="already in use by container aaaaaaaaaaaa"):
        s.register(record("b" * 64, "web"))
    s.release_name("web", "b" * 64)  # not the owner: nothing happens
    assert s.name_owner("web") == "a" * 64
    s.release_name("web", "a" * 64)
    assert s.name_owner("web") is None
    s.remove("a" * 64)
    s.remove("a" * 64)
    assert not os.path.exists(d)


def test_rmtree_does_not_follow_symlinks(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "f").write_text("y")
    os.symlink(outside, tree / "link")
    rmtree(str(tree))
    assert not tree.exists() and (outside / "keep").exists()
    rmtree(str(tree))  # missing: fine


def _writer(path: str, n: int) -> None:
    for i in range(50):
        atomic_write_json(path, {"writer": n, "i": i, "pad": "x" * 4000})


def test_atomic_writes_are_never_seen_half_done(tmp_path):
    path = str(tmp_path / "state.json")
    atomic_write_json(path, {"writer": -1})
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, n)) for n in range(8)]
    for p in procs:
        p.start()
    reads = 0
    while any(p.is_alive() for p in procs):
        with open(path) as f:
            json.load(f)  # raises on a torn file
        reads += 1
    for p in procs:
        p.join()
        assert p.exitcode == 0
    assert reads > 0
    assert [x for x in os.listdir(tmp_path) if x.endswith(".tmp")] == []


def test_rollback_order_collects_and_notes():
    done = []
    with pytest.raises(RuntimeError) as e:
        with Rollback() as rb:
            rb.add("first", done.append, 1)
            rb.add("broken", lambda: 1 / 0)
            rb.add("third", done.append, 3)
            raise RuntimeError("boom")
    assert done == [3, 1]
    assert "cleanup also failed: broken" in e.value.__notes__[0]
    with pytest.raises(CleanupError, match="broken"):
        with Rollback() as rb:
            rb.add("broken", lambda: 1 / 0)
    with Rollback() as rb:
        rb.add("x", done.append, 9)
        assert len(rb.release()) == 1
    assert 9 not in done


def test_start_time_and_liveness():
    me = procfs.start_time(os.getpid())
    assert isinstance(me, int) and procfs.is_alive(os.getpid(), me)
    assert not procfs.is_alive(os.getpid(), me + 1)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        with open("/proc/self/comm", "w") as f:
            f.write("a) b (c")  # comm with spaces and parentheses (proc(5))
        os.write(w, b"x")
        time.sleep(5)
        os._exit(0)
    os.read(r, 1)
    raw = open(f"/proc/{pid}/stat", "rb").read()
    assert procfs.start_time(pid) == int(raw[raw.rindex(b")") + 2 :].split()[19])
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    assert procfs.start_time(pid) is None


def _forked(child) -> tuple[Channel, int]:
    parent, kid = Channel.pair()
    pid = os.fork()
    if pid == 0:
        try:
            parent.close()
            child(kid)
        finally:
            os._exit(0)
    kid.close()
    return parent, pid


def test_protocol_messages_and_payload():
    def child(ch):
        ch.send(NS_READY)
        msg = ch.expect(NET_READY)
        ch.send("echo", **msg)

    ch, pid = _forked(child)
    assert ch.expect(NS_READY) == {}
    ch.send(NET_READY, address="10.0.0.2", resolv_conf="nameserver 1.2.3.4\n")
    assert ch.expect("echo") == {"address": "10.0.0.2", "resolv_conf": "nameserver 1.2.3.4\n"}
    assert ch.expect_exec_done() is None  # EOF
    os.waitpid(pid, 0)


def test_protocol_errors():
    ch, pid = _forked(lambda c: c.send("surprise"))
    with pytest.raises(InitError, match="expected ns-ready, got surprise"):
        ch.expect(NS_READY)
    os.waitpid(pid, 0)
    ch, pid = _forked(lambda c: None)
    with pytest.raises(InitError, match="exited before ns-ready"):
        ch.expect(NS_READY)
    os.waitpid(pid, 0)
    ch, pid = _forked(lambda c: c.report_error('exec "x": not found', 127))
    with pytest.raises(ExecError) as e:
        ch.expect(NS_READY)
    assert (str(e.value), e.value.exit_code) == ('exec "x": not found', 127)
    os.waitpid(pid, 0)
