"""--user, --group-add, --read-only, --sysctl, --ulimit and --device against the real kernel.

Each expectation is what Docker 20.10 shows for the same command (docs/security.md).
The users come from the busybox rootfs' /etc/passwd and /etc/group (rootfs/build.sh).
"""

import json
import os
import subprocess

from tests.integration.test_run_core import status_field

DOCKER_CAPS = "00000000a80425fb"


def test_numeric_user_has_no_effective_or_permitted_caps(minirt):
    r = minirt("run", "--rm", "--user", "1000:1000", "--", "sh", "-c", "id; cat /proc/self/status")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0].startswith("uid=1000(app) gid=1000(app)")
    for field in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
        assert status_field(r.stdout, field) == "0000000000000000", field
    assert status_field(r.stdout, "CapBnd") == DOCKER_CAPS
    # 1000:1000 names a group: none from /etc/group (moby: only in the implicit form), none of
    # minirt's own, only the primary gid (moby >= 20.10.18, CVE-2022-36109; `make compare`)
    groups = [line for line in r.stdout.splitlines() if line.startswith("Groups:")]
    assert groups and groups[0].split()[1:] == ["1000"]


def test_uid_without_passwd_entry_is_allowed_with_home_slash(minirt):
    r = minirt("run", "--rm", "-u", "4242", "--", "sh", "-c", 'id -u; id -g; echo "$HOME"')
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["4242", "0", "/"]


def test_named_user_gets_home_and_supplementary_groups(minirt):
    r = minirt("run", "--rm", "--user", "app", "--", "sh", "-c", 'id; echo "$HOME"; grep Groups /proc/self/status')
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("uid=1000(app) gid=1000(app)"), lines
    assert lines[1] == "/home/app"
    assert sorted(lines[2].split()[1:]) == ["1000", "29", "50"]  # its gid; audio and staff list `app`


def test_nobody_and_explicit_group_and_home_override(minirt):
    r = minirt("run", "--rm", "-e", "HOME=/tmp", "--user", "nobody:staff", "--", "sh", "-c", 'id -u; id -g; echo $HOME')
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["65534", "50", "/tmp"]


def test_group_add_names_and_numbers(minirt):
    r = minirt("run", "--rm", "--user", "1000:1000", "--group-add", "wheel", "--group-add", "777",
               "--", "grep", "Groups", "/proc/self/status")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert sorted(r.stdout.split()[1:]) == ["10", "1000", "777"]


def test_unknown_user_or_group_is_125_with_dockers_message(minirt):
    r = minirt("run", "--rm", "--user", "nosuch", "--", "true")
    assert r.returncode == 125
    assert "unable to find user nosuch: no matching entries in passwd file" in r.stderr
    r = minirt("run", "--rm", "--user", "app:nosuch", "--", "true")
    assert r.returncode == 125
    assert "unable to find group nosuch: no matching entries in group file" in r.stderr
    r = minirt("run", "--rm", "--user", "app", "--group-add", "nosuch", "--", "true")
    assert r.returncode == 125 and "Unable to find group nosuch" in r.stderr
    assert minirt.containers() == []


def test_non_root_user_cannot_write_root_owned_files(minirt):
    r = minirt("run", "--rm", "--user", "app", "--", "sh", "-c", "touch /etc/x")
    assert r.returncode != 0 and "Permission denied" in r.stderr


def test_exec_runs_as_the_containers_user_unless_told(minirt):
    p = minirt.popen("run", "--name", "u1", "--user", "app", "--", "sleep", "60")
    try:
        _wait_running(minirt, "u1")
        r = minirt("exec", "u1", "sh", "-c", 'id -u; echo "$HOME"; grep CapEff /proc/self/status')
        assert r.returncode == 0, r.stderr
        assert r.stdout.split() == ["1000", "/home/app", "CapEff:", "0000000000000000"]
        r = minirt("exec", "--user", "0", "u1", "sh", "-c", "id -u; grep CapEff /proc/self/status")
        assert r.stdout.split() == ["0", "CapEff:", DOCKER_CAPS], r.stderr
        r = minirt("exec", "-u", "nobody", "u1", "id", "-u")
        assert r.stdout.strip() == "65534", r.stderr
        r = minirt("exec", "-u", "nosuch", "u1", "true")
        assert r.returncode == 126 and "unable to find user nosuch" in r.stderr
        doc = json.loads(minirt("inspect", "u1").stdout)[0]
        assert doc["Config"]["User"] == "app"
    finally:
        minirt("rm", "-f", "u1")
        p.wait(timeout=20)


def _wait_running(minirt, name: str) -> None:
    import time

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        r = minirt("inspect", name)
        if r.returncode == 0 and json.loads(r.stdout)[0]["State"]["Running"]:
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} never ran")


def test_read_only_rootfs(minirt, tmp_path):
    vol = tmp_path / "vol"
    vol.mkdir()
    script = (
        "touch /x 2>&1; touch /etc/y 2>&1;"
        " echo a > /run/a && echo run-ok;"
        " echo b > /data/b && echo vol-ok;"
        " echo c > /dev/shm/c && echo shm-ok;"
        " echo d > /tmp2/d && echo tmpfs-ok;"
        " cat /etc/hostname"
    )
    r = minirt("run", "--rm", "--read-only", "--hostname", "ro1", "--tmpfs", "/run", "--tmpfs", "/tmp2",
               "-v", f"{vol}:/data", "--", "sh", "-c", script)  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "touch: /x: Read-only file system"
    assert lines[1] == "touch: /etc/y: Read-only file system"
    assert lines[2:] == ["run-ok", "vol-ok", "shm-ok", "tmpfs-ok", "ro1"]
    assert (vol / "b").read_text() == "b\n"


def test_read_only_without_tmpfs_run_is_read_only_too(minirt):
    # Docker adds nothing at /run: it is part of the read-only root unless --tmpfs /run
    r = minirt("run", "--rm", "--read-only", "--", "sh", "-c", "touch /run/x")
    assert r.returncode != 0 and "Read-only file system" in r.stderr


def test_inspect_shows_the_security_options(minirt):
    r = minirt("run", "--name", "insp", "--user", "app:staff", "--group-add", "audio", "--read-only",
               "--sysctl", "kernel.shmmax=1048576", "--ulimit", "nofile=1024:2048", "--device", "/dev/null:/dev/n2:r",
               "--", "true")  # fmt: skip
    assert r.returncode == 0, r.stderr
    doc = json.loads(minirt("inspect", "insp").stdout)[0]
    hc = doc["HostConfig"]
    assert doc["Config"]["User"] == "app:staff"
    assert hc["GroupAdd"] == ["audio"]
    assert hc["ReadonlyRootfs"] is True
    assert hc["Sysctls"] == {"kernel.shmmax": "1048576"}
    assert hc["Ulimits"] == [{"Name": "nofile", "Hard": 2048, "Soft": 1024}]
    assert hc["Devices"] == [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/n2", "CgroupPermissions": "r"}]


def test_net_sysctl_is_the_containers_own(minirt):
    # --net none: no bridge, so the (throwaway) host's ip_forward has no reason to change
    host_before = minirt.host.run("cat", "/proc/sys/net/ipv4/ip_forward").stdout
    r = minirt("run", "--rm", "--net", "none", "--sysctl", "net.ipv4.ip_forward=1",
               "--", "cat", "/proc/sys/net/ipv4/ip_forward")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1"]
    assert minirt.host.run("cat", "/proc/sys/net/ipv4/ip_forward").stdout == host_before == "0\n"


def test_net_sysctl_of_the_containers_interface(minirt):
    # written after NET_READY, when eth0 exists (Docker writes into the wired netns too)
    r = minirt("run", "--rm", "--sysctl", "net.ipv4.conf.eth0.rp_filter=2", "--",
               "cat", "/proc/sys/net/ipv4/conf/eth0/rp_filter")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["2"]


def test_ipc_sysctls_are_the_containers_own(minirt):
    host = {k: open(f"/proc/sys/kernel/{k}").read() for k in ("shmmax", "msgmax")}
    r = minirt("run", "--rm", "--net", "none", "--sysctl", "kernel.shmmax=1048576", "--sysctl", "kernel.msgmax=4096",
               "--sysctl", "fs.mqueue.msg_max=20",
               "--", "cat", "/proc/sys/kernel/shmmax", "/proc/sys/kernel/msgmax",
               "/proc/sys/fs/mqueue/msg_max")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1048576", "4096", "20"]
    assert {k: open(f"/proc/sys/kernel/{k}").read() for k in host} == host
    # /proc/sys stays read-only for the command itself
    r = minirt("run", "--rm", "--sysctl", "kernel.shmmax=1048576", "--", "sh", "-c", "echo 1 > /proc/sys/kernel/shmmax")
    assert r.returncode != 0 and "Read-only file system" in r.stderr


def test_refused_sysctls_exit_125_with_nothing_created(minirt):
    r = minirt("run", "--rm", "--sysctl", "kernel.hostname=x", "--", "true")
    assert r.returncode == 125
    assert 'invalid argument "kernel.hostname=x" for "--sysctl" flag: sysctl \'kernel.hostname=x\' is not whitelisted' \
        in r.stderr
    r = minirt("run", "--rm", "--net", "host", "--sysctl", "net.ipv4.ip_forward=1", "--", "true")
    assert r.returncode == 125
    assert 'sysctl "net.ipv4.ip_forward" not allowed in host network namespace' in r.stderr
    r = minirt("run", "--rm", "--sysctl", "net.ipv4.nosuch=1", "--", "true")
    assert r.returncode == 125 and "no such file or directory" in r.stderr
    assert minirt.containers() == []


def test_ulimit_nofile_soft_and_hard(minirt):
    r = minirt("run", "--rm", "--ulimit", "nofile=1024:2048", "--ulimit", "core=-1", "--",
               "sh", "-c", "ulimit -n; ulimit -Hn; ulimit -c")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1024", "2048", "unlimited"]


def test_bad_ulimits_exit_125(minirt):
    r = minirt("run", "--rm", "--ulimit", "nofiles=1", "--", "true")
    assert r.returncode == 125
    assert 'invalid argument "nofiles=1" for "--ulimit" flag: invalid ulimit type: nofiles' in r.stderr
    r = minirt("run", "--rm", "--ulimit", "nofile=2048:1024", "--", "true")
    assert r.returncode == 125 and "ulimit soft limit must be less than or equal to hard limit: 2048 > 1024" in r.stderr
    # raising a hard limit needs CAP_SYS_RESOURCE, which this VM's bounding set lacks
    hard = int(subprocess.run(["sh", "-c", "ulimit -Hn"], capture_output=True, text=True).stdout)
    r = minirt("run", "--rm", "--ulimit", f"nofile={hard + 1}:{hard + 1}", "--", "true")
    if "sys_resource" not in _caps_here():
        assert r.returncode == 125 and "error setting rlimit type 7: operation not permitted" in r.stderr
    assert minirt.containers() == []


def _caps_here() -> set:
    from minirt import caps

    return set(caps.supported_here())


def test_device_is_created_and_usable(minirt):
    r = minirt("run", "--rm", "--device", "/dev/null:/dev/mynull", "--device", "/dev/zero",
               "--", "sh", "-c",
               "ls -l /dev/mynull; echo hi > /dev/mynull && echo ok; head -c 4 /dev/zero | wc -c")  # fmt: skip
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("crw-rw-rw-") and "1,   3" in lines[0], lines
    assert lines[1:] == ["ok", "4"]


def test_device_permissions_are_enforced_by_the_cgroup(minirt):
    # loop-control (10:237) is in no default rule. `:r`: opening it for reading is allowed, for
    # writing the devices cgroup refuses (EPERM). Neither open reads or writes a byte.
    r = minirt("run", "--rm", "--device", "/dev/loop-control:/dev/lc:r", "--", "sh", "-c",
               "dd if=/dev/lc count=0 2>/dev/null && echo read-open; : > /dev/lc")  # fmt: skip
    assert r.stdout.split() == ["read-open"], r.stderr
    assert r.returncode != 0 and "Operation not permitted" in r.stderr


def test_missing_device_exits_125(minirt):
    r = minirt("run", "--rm", "--device", "/dev/nosuchdev", "--", "true")
    assert r.returncode == 125
    assert 'error gathering device information while adding custom device "/dev/nosuchdev": no such file' in r.stderr
    r = minirt("run", "--rm", "--device", "/dev/null:/dev/x:rwz", "--", "true")
    assert r.returncode == 125 and "bad mode specified: rwz" in r.stderr


def _block_device() -> tuple[int, int]:
    """A block device the host itself may open: /dev/loop0 (this VM's disk is closed even to
    host root, so it cannot tell the cgroup's refusal from the host's). Only ever opened for
    reading, and no byte is read."""
    import stat

    st = os.stat("/dev/loop0")
    assert stat.S_ISBLK(st.st_mode)
    return os.major(st.st_rdev), os.minor(st.st_rdev)


def test_block_device_made_inside_cannot_be_opened_unless_privileged(minirt):
    major, minor = _block_device()
    # mknod is allowed (`b *:* m`, and CAP_MKNOD); opening the node is not (no `b 7:0 r` rule)
    script = f"mknod /tmp/b b {major} {minor} && echo made; dd if=/tmp/b count=0 2>/dev/null && echo opened"
    r = minirt("run", "--rm", "--", "sh", "-c", script)
    assert r.stdout.split() == ["made"], r.stderr
    r = minirt("run", "--rm", "--", "sh", "-c", f"mknod /tmp/b b {major} {minor}; exec 3< /tmp/b")
    assert r.returncode != 0 and "Operation not permitted" in r.stderr
    r = minirt("run", "--rm", "--privileged", "--", "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["made", "opened"]


def test_devices_cgroup_has_dockers_rules(minirt):
    p = minirt.popen("run", "--name", "dv", "--", "sleep", "60")
    try:
        _wait_running(minirt, "dv")
        (cid,) = minirt.containers()
        d = minirt.cgroup_dirs(cid).get("devices")
        assert d, "no devices hierarchy"
        listed = set(open(f"{d}/devices.list").read().split("\n")) - {""}
        want = {"c 1:5 rwm", "c 1:3 rwm", "c 1:9 rwm", "c 1:8 rwm", "c 5:0 rwm", "c 5:1 rwm", "c *:* m", "b *:* m",
                "c 1:7 rwm", "c 136:* rwm", "c 5:2 rwm", "c 10:200 rwm"}  # fmt: skip
        assert listed == want
    finally:
        minirt("rm", "-f", "dv")
        p.wait(timeout=20)
