"""minirt ps: rows from records in a private MINIRT_ROOT (no containers are run)."""

import os

import pytest

from minirt import cli, procfs
from minirt.state import Store, atomic_write_json


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIRT_ROOT", str(tmp_path))
    return Store(str(tmp_path))


def add(store: Store, n: int, status: str, **rec) -> str:
    cid = f"{n:x}" * 64
    os.makedirs(store.container_dir(cid))
    ports = [{"host_ip": "0.0.0.0", "host_port": 8000 + n, "container_port": 80, "proto": "tcp"}]
    record = {"id": cid, "name": f"c{n}", "status": status, "config": {"argv": ["sh"], "ports": ports},
              "network": {"address": f"10.88.0.{n}", "prefixlen": 24}, **rec}  # fmt: skip
    atomic_write_json(f"{store.container_dir(cid)}/state.json", record)
    return cid


def ps_rows(capsys, *args: str) -> dict:
    assert cli.main(["ps", *args]) == 0
    lines = capsys.readouterr().out.splitlines()
    return {line.split()[1]: line for line in lines[1:]}


def test_only_a_running_container_shows_its_ip_and_ports(store, capsys):
    me = os.getpid()  # a live "init": pid and start time match
    add(store, 1, "running", pid=me, start_time=procfs.start_time(me))
    add(store, 2, "exited", exit_code=3)
    add(store, 3, "running", pid=0)  # its owner is gone: dead
    add(store, 4, "created")  # never started, owner gone: dead
    rows = ps_rows(capsys, "-a")
    assert "10.88.0.1" in rows["c1"] and "running" in rows["c1"] and "0.0.0.0:8001->80/tcp" in rows["c1"]
    assert "exited (3)" in rows["c2"]
    assert "dead" in rows["c3"] and "dead" in rows["c4"]
    for name in ("c2", "c3", "c4"):
        assert "10.88.0." not in rows[name] and "->80/tcp" not in rows[name], rows[name]
    assert list(ps_rows(capsys)) == ["c1"]
