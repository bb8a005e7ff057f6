"""minirt.state: the state directory, name reservation, atomic JSON writes and rmtree."""

import json
import multiprocessing
import os
import stat

import pytest

from minirt import jsonenc, state
from minirt.errors import ConflictError
from minirt.state import Store, atomic_write_json, read_json, rmtree

CID1 = "1" * 64
CID2 = "2" * 64


def record(cid: str, name: str, **extra) -> dict:
    return {"id": cid, "name": name, "status": "created", "pid": 0, "config": {"argv": ["/bin/sh"]}, **extra}


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(root=str(tmp_path / "root"))


def test_root_dir_from_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("MINIRT_ROOT", str(tmp_path))
    assert state.root_dir() == str(tmp_path)
    assert Store().root == str(tmp_path)
    assert Store().containers == f"{tmp_path}/containers"
    monkeypatch.setenv("MINIRT_ROOT", "")
    assert state.root_dir() == "/run/minirt"
    monkeypatch.delenv("MINIRT_ROOT")
    assert Store().root == "/run/minirt"


def test_make_dirs(store):
    d = store.make_dirs(CID1)
    assert d == f"{store.root}/containers/{CID1}" == store.container_dir(CID1)
    assert sorted(os.listdir(d)) == ["merged", "owner", "upper", "work"]
    for sub in ("upper", "work", "merged"):
        assert os.path.isdir(f"{d}/{sub}")
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o700


def test_make_dirs_twice_fails(store):
    store.make_dirs(CID1)
    with pytest.raises(FileExistsError):
        store.make_dirs(CID1)


def test_register_writes_record_and_name(store):
    store.make_dirs(CID1)
    rec = record(CID1, "web", note='quote" and é')
    store.register(rec)
    with open(f"{store.container_dir(CID1)}/state.json") as f:
        assert json.load(f) == rec
    assert read_json(f"{store.container_dir(CID1)}/state.json") == rec
    assert store.name_owner("web") == CID1
    with open(f"{store.root}/names/web") as f:
        assert f.read() == CID1


def test_name_owner_unknown(store):
    assert store.name_owner("nobody") is None


def test_register_same_name_other_id_conflicts(store):
    store.make_dirs(CID1)
    store.make_dirs(CID2)
    store.register(record(CID1, "web"))
    with pytest.raises(ConflictError, match=f"name 'web': already in use by container {CID1[:12]}"):
        store.register(record(CID2, "web"))
    assert store.name_owner("web") == CID1
    assert not os.path.exists(f"{store.container_dir(CID2)}/state.json")


def test_register_other_names_do_not_conflict(store):
    store.make_dirs(CID1)
    store.make_dirs(CID2)
    store.register(record(CID1, "a1"))
    store.register(record(CID2, "a2"))
    assert (store.name_owner("a1"), store.name_owner("a2")) == (CID1, CID2)


def test_release_name_only_by_owner(store):
    store.make_dirs(CID1)
    store.register(record(CID1, "web"))
    store.release_name("web", CID2)
    assert store.name_owner("web") == CID1
    store.release_name("web", CID1)
    assert store.name_owner("web") is None
    store.release_name("web", CID1)  # idempotent
    store.release_name("never-registered", CID1)


def test_name_reusable_after_release(store):
    store.make_dirs(CID1)
    store.make_dirs(CID2)
    store.register(record(CID1, "web"))
    store.release_name("web", CID1)
    store.register(record(CID2, "web"))
    assert store.name_owner("web") == CID2


def test_save_overwrites(store):
    store.make_dirs(CID1)
    store.register(record(CID1, "web"))
    store.save(record(CID1, "web", status="running", pid=42))
    assert read_json(f"{store.container_dir(CID1)}/state.json")["pid"] == 42


def test_remove_is_idempotent(store):
    store.make_dirs(CID1)
    store.register(record(CID1, "web"))
    with open(f"{store.container_dir(CID1)}/upper/file", "w") as f:
        f.write("x")
    store.remove(CID1)
    assert not os.path.exists(store.container_dir(CID1))
    store.remove(CID1)
    store.remove(CID2)  # never existed
    assert os.path.isdir(store.containers)


def test_rmtree_nested_and_symlinks_not_followed(tmp_path):
    outside = tmp_path / "outside"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "keep").write_text("keep")
    (outside / "file").write_text("keep")
    victim = tmp_path / "victim"
    (victim / "a" / "b" / "c").mkdir(parents=True)
    (victim / "a" / "b" / "c" / "f").write_text("x")
    (victim / "a" / "f2").write_text("x")
    (victim / ".hidden").write_text("x")
    os.symlink(outside, victim / "a" / "dirlink")
    os.symlink(outside / "file", victim / "filelink")
    os.symlink(tmp_path / "dangling", victim / "a" / "b" / "dangling")
    os.mkfifo(victim / "fifo")
    (victim / "emptydir").mkdir()

    rmtree(str(victim))

    assert not os.path.lexists(victim)
    assert (outside / "deep" / "keep").read_text() == "keep"
    assert (outside / "file").read_text() == "keep"


def test_rmtree_missing_is_success(tmp_path):
    rmtree(str(tmp_path / "nope"))
    rmtree(str(tmp_path / "nope" / "deeper"))


def test_rmtree_on_a_symlink_does_not_touch_its_target(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    os.symlink(outside, tmp_path / "link")
    try:
        rmtree(str(tmp_path / "link"))  # unlinking the link or refusing are both fine
    except OSError:
        pass
    assert (outside / "keep").exists(), "rmtree deleted the contents of the symlink's target"
    assert not os.path.lexists(tmp_path / "link")


def test_atomic_write_json_content_mode_and_no_temp_files(tmp_path):
    path = str(tmp_path / "state.json")
    for i in range(5):
        obj = {"seq": i, "s": "é\n", "l": [1, 2]}
        atomic_write_json(path, obj)
        with open(path) as f:
            text = f.read()
        assert text == jsonenc.dumps(obj) + "\n"
        assert json.loads(text) == obj
    assert os.listdir(tmp_path) == ["state.json"]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_atomic_write_json_replaces_not_rewrites(tmp_path):
    path = str(tmp_path / "state.json")
    atomic_write_json(path, {"v": 1})
    ino = os.stat(path).st_ino
    with open(path) as old:  # a reader holding the old file keeps the old content
        atomic_write_json(path, {"v": 2})
        assert json.load(old) == {"v": 1}
    assert read_json(path) == {"v": 2}
    assert os.stat(path).st_ino != ino


def test_atomic_write_json_failure_leaves_no_temp_file(tmp_path):
    path = str(tmp_path / "state.json")
    atomic_write_json(path, {"v": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"v": object()})
    assert read_json(path) == {"v": 1}
    assert os.listdir(tmp_path) == ["state.json"]


def _writer(path: str, n: int, writes: int) -> None:
    for i in range(writes):
        # ~40 KB documents: a torn write would be visible as invalid JSON or a bad length
        atomic_write_json(path, {"writer": n, "seq": i, "pad": "x" * (40000 + 97 * n + i), "tail": [n, i]})


def test_concurrent_writers_readers_never_see_partial_documents(tmp_path):
    path = str(tmp_path / "state.json")
    atomic_write_json(path, {"writer": -1, "seq": -1, "pad": "x" * 40000, "tail": [-1, -1]})
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(path, n, 50)) for n in range(8)]
    for p in procs:
        p.start()
    reads = 0
    seen = set()
    try:
        while any(p.is_alive() for p in procs) or reads < 50:
            with open(path) as f:
                doc = json.loads(f.read())  # raises on a partial document
            n, i = doc["writer"], doc["seq"]
            assert doc["tail"] == [n, i]
            assert len(doc["pad"]) == (40000 if n == -1 else 40000 + 97 * n + i)
            seen.add(n)
            reads += 1
    finally:
        for p in procs:
            p.join(10)
    assert [p.exitcode for p in procs] == [0] * 8
    assert reads >= 50
    assert len(seen) >= 2  # the reader really raced the writers
    assert os.listdir(tmp_path) == ["state.json"]
    assert read_json(path)["seq"] == 49
