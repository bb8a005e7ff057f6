"""User namespaces against the real kernel: --uidmap/--gidmap, --userns-remap, the idmapped
rootfs, volumes seen as nobody, networking, -p, exec, and nothing left behind."""

import os
import re
import subprocess

import pytest

from tests.conftest import ROOTFS
from tests.integration.test_lifecycle import inspect, ok, wait_for
from tests.integration.test_ports import fetch

MAP = ("--uidmap", "0:100000:65536", "--gidmap", "0:100000:65536")
HOST_START = 100000


def field(text: str, name: str) -> str:
    m = re.search(rf"^{name}:\s*(.*)$", text, re.M)
    assert m, f"{name} not in {text!r}"
    return m.group(1)


def test_root_inside_is_an_unprivileged_uid_outside(minirt):
    p = minirt.popen("run", "--rm", "--net", "none", *MAP, "--", "sh", "-c",
                     "id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; grep CapEff /proc/self/status; "
                     "stat -c %u:%g /bin/busybox /etc; echo ready; read line; true", stdin=subprocess.PIPE)  # fmt: skip
    try:
        out = []
        while (line := p.stdout.readline()) and line.strip() != "ready":
            out.append(line)
        text = "".join(out)
        lines = text.split("\n")
        assert lines[0:2] == ["0", "0"], p.stderr.read() if not text else text
        assert re.findall(r"^\s*0\s+100000\s+65536$", text, re.M) == ["         0     100000      65536"] * 2
        # root of its namespace: Docker's 14 capabilities, effective
        assert field(text, "CapEff") == "00000000a80425fb"
        # the image's files, owned by host root, appear owned by container root (idmapped lower)
        assert "0:0\n0:0" in text
        # ...while on the host the container runs as uid 100000
        child = int(open(f"/proc/{p.pid}/task/{p.pid}/children").read().split()[0])
        init = int(open(f"/proc/{child}/task/{child}/children").read().split()[0]) if _is_minirt(child) else child
        status = open(f"/proc/{init}/status").read()
        assert field(status, "Uid").split() == [str(HOST_START)] * 4
        assert field(status, "Gid").split() == [str(HOST_START)] * 4
    finally:
        p.stdin.close()
        assert p.wait(timeout=20) == 0, p.stderr.read()
    # the image itself was not touched: no chown, no copy
    assert os.stat(f"{ROOTFS}/bin/busybox").st_uid == 0


def _is_minirt(pid: int) -> bool:
    return "minirt" in open(f"/proc/{pid}/cmdline").read()


def test_writable_layer_is_owned_by_the_mapped_root_and_nothing_else(minirt):
    ok(minirt("run", "--name", "ww", "--net", "none", *MAP, "--", "sh", "-c",
              "echo x > /created; mkdir -p /var/new; touch /var/new/f; echo y >> /etc/hosts; "
              "chown 1000:1000 /created"))  # fmt: skip
    (cid,) = minirt.containers()
    upper = f"{minirt.root}/containers/{cid}/upper"
    st = os.stat(f"{upper}/created")
    assert (st.st_uid, st.st_gid) == (HOST_START + 1000, HOST_START + 1000)  # chown 1000 inside
    assert os.stat(f"{upper}/var/new/f").st_uid == HOST_START
    # every file of the writable layer belongs to the container's range: container root
    # owns no host file it did not create through a volume
    owners = set()
    for d, dirs, files in os.walk(upper):
        for name in dirs + files:
            st = os.lstat(f"{d}/{name}")
            owners.add(st.st_uid)
            assert HOST_START <= st.st_uid < HOST_START + 65536, f"{d}/{name} owned by {st.st_uid}"
            assert HOST_START <= st.st_gid < HOST_START + 65536, f"{d}/{name} group {st.st_gid}"
    assert HOST_START in owners
    doc = inspect(minirt, "ww")
    assert doc["HostConfig"]["UsernsMode"] == ""
    assert doc["Minirt"] == {"UidMap": [[0, 100000, 65536]], "GidMap": [[0, 100000, 65536]]}
    ok(minirt("rm", "ww"))


def test_volume_files_of_host_root_are_nobody_and_not_writable(minirt, tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()
    (vol / "rootonly").write_text("host\n")
    os.chmod(vol / "rootonly", 0o644)
    os.chmod(vol, 0o755)
    r = minirt("run", "--rm", "--net", "none", *MAP, "-v", f"{vol}:/vol", "--", "sh", "-c",
               "stat -c %u:%g /vol/rootonly; cat /vol/rootonly; "
               "echo no >> /vol/rootonly && echo WROTE; touch /vol/new && echo CREATED; true")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[:2] == ["65534:65534", "host"]
    assert "WROTE" not in r.stdout and "CREATED" not in r.stdout
    assert "Permission denied" in r.stderr
    assert (vol / "rootonly").read_text() == "host\n" and not (vol / "new").exists()
    # a volume the user gives to the range is writable, and what is made there is 100000's
    os.chown(vol, HOST_START, HOST_START)
    r = minirt("run", "--rm", "--net", "none", *MAP, "-v", f"{vol}:/vol", "--", "touch", "/vol/mine")
    assert r.returncode == 0, r.stderr
    assert os.stat(vol / "mine").st_uid == HOST_START


def test_dev_is_bound_from_the_host_and_proc_sys_work(minirt):
    r = minirt("run", "--rm", "--net", "none", *MAP, "--", "sh", "-c",
               "echo hi > /dev/null && head -c 4 /dev/zero | wc -c; head -c 8 /dev/urandom | wc -c; "
               "mknod /dev/sda b 8 0 && echo MKNOD; ls /sys/class/net; "
               "cat /sys/fs/cgroup/pids/pids.max; true")  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert lines[:2] == ["4", "8"] and "MKNOD" not in lines
    assert "lo" in lines  # a sysfs of its own network namespace
    assert lines[-1] == "max"  # the read-only cgroup view still works


def test_bridge_network_and_published_port_under_remap(minirt, tmp_path):
    sub = _subid_files(tmp_path)
    minirt.write_config(cgroup_parent=minirt.cgroup_parent, **sub)
    r = minirt("run", "--rm", "--userns-remap", "default", "--", "sh", "-c",
               "ip -4 addr show eth0; gw=$(ip route | awk '/default/ {print $3}'); "
               "ping -c 1 -W 2 $gw && echo PONG")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert re.search(r"inet \d+\.\d+\.\d+\.\d+/\d+", r.stdout) and "PONG" in r.stdout
    ok(minirt("run", "-d", "--name", "web", "--userns-remap", "default", "-p", "18080:80", "--",
              "httpd", "-f", "-p", "80", "-h", "/var/www"))  # fmt: skip
    wait_for(lambda: fetch(minirt.host, "127.0.0.1", 18080) == "ok", what="httpd behind -p")
    r = minirt("exec", "web", "sh", "-c", "id -u; cat /proc/self/uid_map; grep CapEff /proc/self/status")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[:4] == ["0", "0", "100000", "65536"]
    assert "00000000a80425fb" in r.stdout
    ok(minirt("rm", "-f", "web"))


def _subid_files(tmp_path, uid_text: str = "", gid_text: str = "") -> dict:
    (tmp_path / "subuid").write_text(uid_text)
    (tmp_path / "subgid").write_text(gid_text)
    return {"subuid_file": str(tmp_path / "subuid"), "subgid_file": str(tmp_path / "subgid")}


def test_userns_remap_default_creates_the_minirt_entry_once(minirt, tmp_path):
    sub = _subid_files(tmp_path, "alice:100000:65536\n", "alice:100000:65536\nbob:165536:65536\n")
    minirt.write_config(cgroup_parent=minirt.cgroup_parent, userns_remap="default", **sub)
    r = minirt("run", "--rm", "--net", "none", "--", "cat", "/proc/self/uid_map", "/proc/self/gid_map")
    assert r.returncode == 0, r.stderr
    # the first start free in both files: past alice (uid) and bob (gid)
    assert r.stdout.split() == ["0", "231072", "65536"] * 2
    assert (tmp_path / "subuid").read_text() == "alice:100000:65536\nminirt:231072:65536\n"
    assert (tmp_path / "subgid").read_text() == "alice:100000:65536\nbob:165536:65536\nminirt:231072:65536\n"
    # reused after
    r = minirt("run", "--rm", "--net", "none", "--", "cat", "/proc/self/uid_map")
    assert r.stdout.split() == ["0", "231072", "65536"], r.stderr
    assert (tmp_path / "subuid").read_text().count("minirt:") == 1
    # --userns=host turns the configured remap off for one container, as in Docker
    r = minirt("run", "--name", "hh", "--net", "none", "--userns", "host", "--", "cat", "/proc/self/uid_map")
    assert r.stdout.split() == ["0", "0", "4294967295"], r.stderr
    assert inspect(minirt, "hh")["HostConfig"]["UsernsMode"] == "host"
    ok(minirt("rm", "hh"))


def test_the_real_subuid_files_are_restored_exactly(minirt):
    """The one test that uses /etc/subuid and /etc/subgid: it restores their bytes, mode, owner
    and times."""
    saved = {}
    for path in ("/etc/subuid", "/etc/subgid"):
        try:
            with open(path, "rb") as f:
                saved[path] = (f.read(), os.stat(path))
        except FileNotFoundError:
            saved[path] = None
    try:
        r = minirt("run", "--rm", "--net", "none", "--userns-remap", "default", "--", "id", "-u")
        assert r.returncode == 0 and r.stdout == "0\n", r.stderr
        assert "minirt:" in open("/etc/subuid").read() and "minirt:" in open("/etc/subgid").read()
    finally:
        for path, old in saved.items():
            if old is None:
                if os.path.exists(path):
                    os.unlink(path)
                continue
            data, st = old
            with open(path, "wb") as f:
                f.write(data)
            os.chmod(path, st.st_mode & 0o7777)
            os.chown(path, st.st_uid, st.st_gid)
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_refusals(minirt):
    for args, msg in [
        (("--privileged",), "privileged mode is incompatible with user namespaces"),
        (("--net", "host"), "cannot share the host's network namespace"),
        (("--userns", "host"), "conflicting options"),
    ]:
        r = minirt("run", "--rm", *MAP, *args, "--", "true")
        assert r.returncode == 125 and msg in r.stderr, (args, r.stderr)
    r = minirt("run", "--rm", "--uidmap", "1:100000:10", "--", "true")
    assert r.returncode == 125 and "container id 0 must be mapped" in r.stderr
    assert minirt.containers() == []


def _mounts(minirt) -> str:
    return open(f"/proc/{minirt.host.pid}/mountinfo").read()


@pytest.mark.parametrize("point", ["after-idmap", "after-record", "after-cgroup", "after-spawn", "after-network",
                                   "after-veth", "after-exec"])  # fmt: skip
def test_every_fault_point_leaves_nothing(minirt, point):
    before = _mounts(minirt)
    r = minirt("run", "--rm", *MAP, "-p", "18081:80", "--", "true", env={"MINIRT_FAULT": f"fail:{point}"})
    assert r.returncode == 125 and r.stderr.endswith(f"minirt: injected fault at {point}\n"), r.stderr
    assert minirt.containers() == []
    after = _mounts(minirt)
    assert after == before and minirt.root not in after and "idmapped" not in after
    # and a kill at the same point: the sentinel carries out the plan once it runs (after
    # after-record); before it, what is left (a directory, a dead record) is gc's, as without userns
    r = minirt("run", "--rm", *MAP, "--", "true", env={"MINIRT_FAULT": f"kill:{point}"})
    assert r.returncode in (-9, 137), r.stderr
    if point in ("after-idmap", "after-record"):
        ok(minirt("gc"))
    wait_for(lambda: minirt.containers() == [], timeout=10, what="sentinel clean-up")
    assert _mounts(minirt) == before


def test_user_and_device_compose_with_a_user_namespace(minirt):
    """--user switches to a uid of the namespace (host uid = range start + uid); --device binds
    the host's node there, since mknod needs CAP_MKNOD in the initial namespace."""
    cid = ok(minirt("run", "-d", "--net", "none", *MAP, "--user", "1000:1000", "--device", "/dev/null:/dev/mynull",
                    "--", "sh", "-c", "id -u; id -g; echo x > /dev/mynull && echo wrote; exec sleep 60"))  # fmt: skip
    cid = cid.strip()
    wait_for(lambda: "wrote" in ok(minirt("logs", cid)), what="the container's output")
    assert ok(minirt("logs", cid)).split()[:2] == ["1000", "1000"]
    pid = inspect(minirt, cid)["State"]["Pid"]
    assert field(open(f"/proc/{pid}/status").read(), "Uid").split() == [str(HOST_START + 1000)] * 4
    ok(minirt("rm", "-f", cid))
