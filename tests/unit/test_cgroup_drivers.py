"""The cgroup drivers against fake cgroupfs trees (no root): what each writes and reads.

The v2 driver is tested here because this machine's cgroup2 holds no controller we use
(hybrid mode, docs/resources.md); the real-kernel tests (tests/integration/test_cgroups.py)
run the v1 driver, and the v2 one where the kernel offers its controllers.
"""

import os

import pytest

from minirt import cgroups
from minirt.cgroups import fsutil, layout
from minirt.cgroups.v1 import CgroupV1
from minirt.cgroups.v2 import CgroupV2

CID = "c" * 64


def put(path, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def get(path) -> str:
    with open(path) as f:
        return f.read()


@pytest.fixture
def v2tree(tmp_path):
    """A unified hierarchy whose root offers every controller, with /minirt existing (the
    kernel fills a new cgroup's interface files; a fake tree cannot, so the leaf's are put
    there by the test where it reads them)."""
    root = tmp_path / "cg"
    put(root / "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n")
    put(root / "cgroup.subtree_control", "")
    put(root / "minirt" / "cgroup.controllers", "cpuset cpu io memory pids\n")
    put(root / "minirt" / "cgroup.subtree_control", "memory pids\n")
    return str(root)


def test_v2_create_enables_controllers_on_every_level_and_makes_the_leaf(v2tree):
    cg = CgroupV2({"": f"{v2tree}/minirt/{CID}"}, root=v2tree)
    cg.create()
    assert os.path.isdir(f"{v2tree}/minirt/{CID}")
    # the fake file keeps the last write: what the kernel would be asked to add
    assert get(f"{v2tree}/cgroup.subtree_control") == "+cpuset +cpu +io +memory +pids"
    assert get(f"{v2tree}/minirt/cgroup.subtree_control") == "+cpuset +cpu +io"


def test_v2_apply_place_kill_and_the_accounting_files(v2tree):
    d = f"{v2tree}/minirt/{CID}"
    for name in ("memory.max", "memory.swap.max", "cpu.max", "pids.max", "cgroup.procs", "cgroup.kill"):
        put(f"{d}/{name}", "")
    cg = CgroupV2({"": d}, root=v2tree)
    cg.apply([("memory.max", "67108864"), ("cpu.max", "50000 100000"), ("pids.max", "20")])
    assert get(f"{d}/memory.max") == "67108864" and get(f"{d}/cpu.max") == "50000 100000"
    assert get(f"{d}/pids.max") == "20"
    cg.place(4242)
    assert get(f"{d}/cgroup.procs") == "4242"
    put(f"{d}/memory.events", "low 0\nhigh 0\nmax 7\noom 2\noom_kill 1\noom_group_kill 0\n")
    assert cg.oom_kills() == 1
    put(f"{d}/cpu.stat", "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
    put(f"{d}/memory.current", "10485760\n")
    put(f"{d}/memory.stat", "anon 4096\nfile 2097152\ninactive_file 1048576\n")
    put(f"{d}/memory.max", "max\n")
    put(f"{d}/io.stat", "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n"
                        "8:16 rbytes=1 wbytes=2 rios=1 wios=1 dbytes=0 dios=0\n")  # fmt: skip
    put(f"{d}/pids.current", "3\n")
    assert cg.stats() == {"cpu_ns": 1_500_000, "mem_usage": 10485760 - 1048576, "mem_limit": -1,
                          "blk_read": 4097, "blk_write": 8194, "pids": 3}  # fmt: skip
    put(f"{d}/cgroup.procs", "")
    cg.kill_all()
    assert get(f"{d}/cgroup.kill") == "1"


def test_v2_round_trips_through_a_record(v2tree):
    cg = CgroupV2({"": f"{v2tree}/minirt/{CID}"}, root=v2tree)
    back = cgroups.driver(cg.to_dict())
    assert isinstance(back, CgroupV2) and back.dir == cg.dir and back.root == v2tree


@pytest.fixture
def v1tree(tmp_path):
    """Hybrid layout: v1 hierarchies (cpuset's root holds its cpus and mems) and a v2 twin."""
    root = tmp_path / "cg"
    put(root / "cpuset" / "cpuset.cpus", "0-1\n")
    put(root / "cpuset" / "cpuset.mems", "0\n")
    for h in ("memory", "pids", "cpu", "cpuacct", "blkio", "unified"):
        os.makedirs(root / h)
    return str(root)


def v1_dirs(root: str) -> dict:
    return {h: f"{root}/{h}/minirt/{CID}" for h in ("cpuset", "memory", "pids", "cpu", "cpuacct", "blkio", "unified")}


def test_v1_create_copies_cpuset_into_each_new_level(v1tree, monkeypatch):
    made = []
    real_mkdir = os.mkdir

    def kernel_mkdir(path, mode=0o777):
        # a new cpuset cgroup starts with empty cpus and mems (the kernel's files, faked here)
        real_mkdir(path, mode)
        made.append(path)
        if "/cpuset/" in path:
            put(f"{path}/cpuset.cpus", "")
            put(f"{path}/cpuset.mems", "")

    monkeypatch.setattr(os, "mkdir", kernel_mkdir)
    cg = CgroupV1(v1_dirs(v1tree))
    cg.create()
    assert get(f"{v1tree}/cpuset/minirt/cpuset.cpus") == "0-1"
    assert get(f"{v1tree}/cpuset/minirt/{CID}/cpuset.mems") == "0"
    assert f"{v1tree}/unified/minirt/{CID}" in made and len(made) == 14
    cg.create()  # idempotent
    assert len(made) == 14


def test_v1_create_fills_a_cpuset_parent_another_run_left_empty(v1tree):
    """The shared parent exists already, made by a run that was killed (or is still busy)
    between its mkdir and its cpuset writes: it is filled before the container's level copies
    it, instead of the container getting empty cpus and mems (ENOSPC when its init joins)."""
    os.makedirs(f"{v1tree}/cpuset/minirt")
    put(f"{v1tree}/cpuset/minirt/cpuset.cpus", "")
    put(f"{v1tree}/cpuset/minirt/cpuset.mems", "")
    real_mkdir = os.mkdir

    def kernel_mkdir(path, mode=0o777):
        real_mkdir(path, mode)
        if "/cpuset/" in path:
            put(f"{path}/cpuset.cpus", "")
            put(f"{path}/cpuset.mems", "")

    os.mkdir = kernel_mkdir
    try:
        CgroupV1(v1_dirs(v1tree)).create()
    finally:
        os.mkdir = real_mkdir
    assert get(f"{v1tree}/cpuset/minirt/cpuset.cpus") == "0-1"
    assert get(f"{v1tree}/cpuset/minirt/{CID}/cpuset.cpus") == "0-1"
    assert get(f"{v1tree}/cpuset/minirt/{CID}/cpuset.mems") == "0"


def test_v1_apply_refuses_a_controller_that_is_not_mounted(v1tree):
    from minirt.errors import ConfigError

    dirs = v1_dirs(v1tree)
    del dirs["pids"]
    with pytest.raises(ConfigError, match="pids is not mounted"):
        CgroupV1(dirs).apply([("pids", "pids.max", "20")])


def test_v1_oom_and_stats_files(v1tree):
    cg = CgroupV1(v1_dirs(v1tree))
    d = cg.dirs
    put(f"{d['memory']}/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert cg.oom_kills() == 2
    put(f"{d['cpuacct']}/cpuacct.usage", "123456789\n")
    put(f"{d['memory']}/memory.usage_in_bytes", "8388608\n")
    put(f"{d['memory']}/memory.stat", "cache 0\ntotal_inactive_file 4194304\n")
    put(f"{d['memory']}/memory.limit_in_bytes", "67108864\n")
    put(f"{d['blkio']}/blkio.throttle.io_service_bytes",
        "8:0 Read 100\n8:0 Write 200\n8:0 Sync 300\n8:0 Total 300\nTotal 300\n")  # fmt: skip
    put(f"{d['pids']}/pids.current", "2\n")
    assert cg.stats() == {"cpu_ns": 123456789, "mem_usage": 4194304, "mem_limit": 67108864,
                          "blk_read": 100, "blk_write": 200, "pids": 2}  # fmt: skip


def test_remove_of_a_gone_cgroup_is_a_no_op(v1tree):
    CgroupV1(v1_dirs(v1tree)).remove()
    fsutil.rmdir(f"{v1tree}/nothing-here")


def test_relative_parents_nest_under_the_creator_and_absolute_ones_start_at_the_root():
    assert layout._join("/sys/fs/cgroup/memory", "/process_api/x", "/minirt", CID) == (
        f"/sys/fs/cgroup/memory/minirt/{CID}"
    )
    assert layout._join("/sys/fs/cgroup/memory", "/process_api/x", "t/1", CID) == (
        f"/sys/fs/cgroup/memory/process_api/x/t/1/{CID}"
    )
    assert layout._join("/sys/fs/cgroup/pids", "/", "t", CID) == f"/sys/fs/cgroup/pids/t/{CID}"


@pytest.mark.parametrize("bad", ["", "a/../b", "..", "  "])
def test_a_parent_that_climbs_out_is_refused(bad):
    from minirt.errors import ConfigError

    with pytest.raises(ConfigError):
        layout.validate_parent(bad)


def test_mode_of_a_plain_directory_is_legacy(tmp_path):
    assert layout.mode(str(tmp_path)) == "legacy"


def test_v1_mounts_maps_comounted_controllers_to_one_point(tmp_path):
    mi = tmp_path / "mountinfo"
    mi.write_text(
        "30 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n"
        "31 25 0:27 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n"
        "32 25 0:28 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n"
        "33 25 0:29 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd\n"
    )
    assert layout.v1_mounts(str(mi)) == {"cpu": "/sys/fs/cgroup/cpu,cpuacct", "cpuacct": "/sys/fs/cgroup/cpu,cpuacct",
                                         "memory": "/sys/fs/cgroup/memory"}  # fmt: skip
