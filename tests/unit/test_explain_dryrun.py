"""explain.py and the dry-run paths that need no root: line rendering, the stop -> owner relay,
the IPAM peek, the cgroupfs simulation, the sysctl default of a device not made yet, and the
state writes a dry run skips. Everything lives in tmp_path."""

import os
import signal

import pytest

from minirt import explain, procfs
from minirt.cgroups import fsutil
from minirt.net import ipam, netlink, sysctl
from minirt.state import Store, atomic_write_json, rmtree


@pytest.fixture(autouse=True)
def _explain_state():
    """Each test starts with explain off and leaves it so (module state)."""
    saved = (explain.enabled, explain.dry, list(explain._fds))
    explain.enabled = explain.dry = False
    fsutil._dry_dirs.clear()
    fsutil._dry_files.clear()
    yield
    explain.enabled, explain.dry = saved[0], saved[1]
    explain._fds[:] = saved[2]
    fsutil._dry_dirs.clear()
    fsutil._dry_files.clear()


@pytest.fixture
def captured():
    """explain's lines, through a pipe in place of stderr."""
    r, w = os.pipe()
    explain._fds[:] = [w]

    def lines() -> list[str]:
        os.close(w)
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
        os.close(r)
        return data.decode().splitlines()

    return lines


def test_kill_lines_name_the_signal_as_kill_takes_it():
    assert explain.render_kill(signal.SIGTERM, 12345) == "kill -TERM 12345"
    assert explain.render_kill(9, 7) == "kill -KILL 7"
    assert explain.render_kill(signal.SIGUSR1, "$PID") == "kill -USR1 $PID"
    assert explain.render_kill(200, 1) == "kill -200 1"  # not a signal Python names


def test_netlink_lines():
    assert netlink.render_delete("mr0123456789ab") == "ip link del mr0123456789ab"
    assert netlink.render_veth("mrx", "eth0", 1500, "minirt0", "02:42:ac:11:00:02", explain.PID) == (
        "ip link add mrx mtu 1500 master minirt0 up type veth peer name eth0 mtu 1500 "
        "address 02:42:ac:11:00:02 netns $PID"
    )


def test_lines_are_printed_only_when_enabled(captured):
    explain.cmd("ip link del a")
    explain.enabled = True
    explain.cmd("ip link del b")
    assert captured() == ["+ ip link del b"]


def test_start_dry_turns_printing_on():
    explain.start_dry()
    assert explain.enabled and explain.dry


def test_to_fd_none_turns_explain_off(captured):
    explain.enabled = True
    explain.to_fd(None)
    explain.cmd("not printed")
    assert not explain.enabled and explain._fds == []
    assert captured() == []


def test_the_owner_prints_into_the_stop_s_memfd_only_when_it_was_not_explaining():
    relay, request = explain.relay_request()
    try:
        assert request == f"explain {os.getpid()} {relay}"
        explain._fds[:] = [2]
        explain.follow_request(request)  # the owner: not explaining, so the memfd only
        assert explain.enabled and len(explain._fds) == 1 and explain._fds[0] != 2
        explain.cmd("rmdir /sys/fs/cgroup/x")
        os.close(explain._fds[0])
        assert explain.relayed(relay) == "+ rmdir /sys/fs/cgroup/x\n"
    finally:
        os.close(relay)


def test_a_malformed_or_stale_request_is_ignored(tmp_path):
    other = os.open(tmp_path / "someone-else-s-file", os.O_WRONLY | os.O_CREAT)  # a reused pid's fd
    try:
        for request in ("", "explain", "explain 1 x", "nonsense 1 2", f"explain {2**22 + 7} 3",
                        f"explain {os.getpid()} {other}"):  # fmt: skip
            explain.follow_request(request)
            assert not explain.enabled
    finally:
        os.close(other)
    assert (tmp_path / "someone-else-s-file").read_text() == ""


def _me(cid: str) -> dict:
    return {"container": cid, "pid": os.getpid(), "start_time": procfs.start_time(os.getpid())}


def test_a_dry_allocate_peeks_the_address_a_real_one_then_leases(tmp_path, captured):
    net = str(tmp_path / "n1")
    os.makedirs(f"{net}/leases")
    ipam.allocate(net, "10.0.0.0/24", "10.0.0.1", _me("a" * 64))
    before = sorted(os.listdir(f"{net}/leases"))
    explain.start_dry()
    peeked = ipam.allocate(net, "10.0.0.0/24", "10.0.0.1", _me("b" * 64))
    assert sorted(os.listdir(f"{net}/leases")) == before  # no lease, no last_reserved change
    explain.enabled = explain.dry = False
    assert ipam.allocate(net, "10.0.0.0/24", "10.0.0.1", _me("b" * 64)) == peeked == "10.0.0.3"
    explain.start_dry()
    assert ipam.release_owner(net, "b" * 64) == ["10.0.0.3"]
    assert os.path.exists(f"{net}/leases/10.0.0.3")  # a dry release lists, removes nothing
    assert captured() == ["+ # ipam: lease 10.0.0.3 in network n1", "+ # ipam: release 10.0.0.3 in network n1"]


def test_a_dry_allocate_in_a_network_not_made_yet_writes_nothing(tmp_path):
    explain.start_dry()
    net = str(tmp_path / "new")
    assert ipam.allocate(net, "10.1.0.0/24", "10.1.0.1", _me("a" * 64)) == "10.1.0.2"
    assert not os.path.exists(net)


def test_a_dry_cpuset_mkdir_copies_the_parent_s_values_down_every_new_level(tmp_path, captured):
    top = tmp_path / "cpuset"
    top.mkdir()
    (top / "cpuset.cpus").write_text("0-3\n")
    (top / "cpuset.mems").write_text("0\n")
    explain.start_dry()
    fsutil.mkdirs(f"{top}/a/b", cpuset=True)
    assert sorted(os.listdir(top)) == ["cpuset.cpus", "cpuset.mems"]
    assert captured() == [
        f"+ mkdir {top}/a", f"+ echo 0-3 > {top}/a/cpuset.cpus", f"+ echo 0 > {top}/a/cpuset.mems",
        f"+ mkdir {top}/a/b", f"+ echo 0-3 > {top}/a/b/cpuset.cpus", f"+ echo 0 > {top}/a/b/cpuset.mems",
    ]  # fmt: skip


def test_a_dry_v2_tree_enables_what_the_parent_would_offer(tmp_path, captured):
    root = tmp_path / "unified"
    root.mkdir()
    (root / "cgroup.controllers").write_text("cpu memory pids\n")
    (root / "cgroup.subtree_control").write_text("\n")
    explain.start_dry()
    from minirt.cgroups.v2 import CgroupV2

    CgroupV2({"": f"{root}/p/c"}, str(root)).create()
    assert sorted(os.listdir(root)) == ["cgroup.controllers", "cgroup.subtree_control"]
    assert captured() == [
        f"+ echo +cpu +memory +pids > {root}/cgroup.subtree_control",
        f"+ mkdir {root}/p",
        f"+ echo +cpu +memory +pids > {root}/p/cgroup.subtree_control",
        f"+ mkdir {root}/p/c",
    ]


def test_a_dry_rmdir_and_kill_print_and_change_nothing(tmp_path, captured):
    d = tmp_path / "cg"
    d.mkdir()
    explain.start_dry()
    fsutil.kill_pids(lambda: [os.getpid()])  # this very process: still alive after the call
    fsutil.rmdir(str(d))
    assert d.is_dir()
    assert captured() == [f"+ kill -KILL {os.getpid()}", f"+ rmdir {d}"]


def test_a_device_sysctl_of_a_device_not_made_yet_starts_as_default():
    assert sysctl._default_for_new_device("net.ipv4.conf.nosuchdev0.route_localnet") == sysctl.read(
        "net.ipv4.conf.default.route_localnet"
    )
    with pytest.raises(FileNotFoundError):
        sysctl._default_for_new_device("net.bridge.bridge-nf-call-nosuch")


def test_dry_state_writes_are_skipped(tmp_path):
    explain.start_dry()
    atomic_write_json(str(tmp_path / "x.json"), {"a": 1})
    (tmp_path / "keep").mkdir()
    rmtree(str(tmp_path / "keep"))
    store = Store(str(tmp_path / "root"))
    store.register({"id": "a" * 64, "name": "web"})
    store.release_name("web", "a" * 64)
    assert sorted(os.listdir(tmp_path)) == ["keep"]


def test_a_dry_register_still_refuses_a_name_in_use(tmp_path):
    from minirt.errors import ConflictError

    store = Store(str(tmp_path))
    os.makedirs(f"{tmp_path}/names")
    (tmp_path / "names" / "web").write_text("b" * 64)
    explain.start_dry()
    with pytest.raises(ConflictError, match="already in use"):
        store.register({"id": "a" * 64, "name": "web"})
