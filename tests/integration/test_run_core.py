"""minirt run against the real kernel: namespaces, rootfs, /proc /sys /dev, caps, mounts."""

import json
import os
import re
import subprocess

from tests.conftest import ROOTFS


def status_field(text: str, name: str) -> str:
    m = re.search(rf"^{name}:\s*(\S+)", text, re.M)
    assert m, f"{name} not in {text!r}"
    return m.group(1)


def test_command_is_pid1_and_proc_shows_only_the_container(minirt):
    r = minirt("run", "--rm", "--", "sh", "-c", "echo $$; ls /proc | grep -E '^[0-9]+$'")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.split()
    assert lines[0] == "1"
    pids = sorted(int(p) for p in lines[1:])
    # sh (1), ls and grep: nothing of the host's hundreds of processes
    assert pids[0] == 1 and len(pids) <= 4, pids


def test_hostname_is_isolated(minirt):
    host_before = os.uname().nodename
    r = minirt("run", "--rm", "--hostname", "box", "--", "sh", "-c", "hostname; cat /etc/hostname; echo $HOSTNAME")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["box", "box", "box"]
    assert os.uname().nodename == host_before


def test_default_hostname_is_the_short_id(minirt):
    r = minirt("run", "--", "hostname")
    assert r.returncode == 0, r.stderr
    (cid,) = minirt.containers()
    assert r.stdout.strip() == cid[:12]
    state = json.load(open(f"{minirt.root}/containers/{cid}/state.json"))
    assert state["status"] == "exited" and state["exit_code"] == 0


def test_mount_inside_is_invisible_on_host(minirt, uniq):
    p = minirt.popen(
        "run", "--rm", "--cap-add", "SYS_ADMIN", "--",
        "sh", "-c", f"mkdir -p /mnt && mount -t tmpfs {uniq} /mnt && echo mounted && read line; true",
        stdin=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert p.stdout.readline().strip() == "mounted", p.stderr.read()
        with open("/proc/self/mountinfo") as f:
            assert uniq not in f.read()
        # and it is really there, seen from inside the container's mount namespace
        child = int(open(f"/proc/{p.pid}/task/{p.pid}/children").read().split()[0])
        with open(f"/proc/{child}/mountinfo") as f:
            assert uniq in f.read()
    finally:
        p.stdin.close()
        assert p.wait(timeout=20) == 0, p.stderr.read()


def test_writes_do_not_touch_rootfs_and_vanish_with_rm(minirt, uniq):
    r = minirt("run", "--rm", "--", "sh", "-c", f"echo x > /etc/{uniq} && rm /bin/ls && cat /etc/{uniq}")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "x"
    assert not os.path.exists(f"{ROOTFS}/etc/{uniq}")
    assert os.path.lexists(f"{ROOTFS}/bin/ls")
    assert minirt.containers() == []
    assert os.listdir(f"{minirt.root}/names") == []


def test_writes_stay_in_the_upper_layer_without_rm(minirt, uniq):
    r = minirt("run", "--", "sh", "-c", f"echo x > /root/{uniq}")
    assert r.returncode == 0, r.stderr
    (cid,) = minirt.containers()
    assert open(f"{minirt.root}/containers/{cid}/upper/root/{uniq}").read() == "x\n"
    assert not os.path.exists(f"{ROOTFS}/root/{uniq}")


def test_docker_default_capabilities_and_no_new_privs(minirt):
    r = minirt("run", "--rm", "--", "cat", "/proc/self/status")
    assert r.returncode == 0, r.stderr
    for field in ("CapBnd", "CapEff", "CapPrm"):
        assert status_field(r.stdout, field) == "00000000a80425fb"
    assert status_field(r.stdout, "CapInh") == "0000000000000000"
    assert status_field(r.stdout, "CapAmb") == "0000000000000000"
    assert status_field(r.stdout, "NoNewPrivs") == "1"


def test_cap_add_and_drop(minirt):
    r = minirt("run", "--rm", "--cap-add", "net_admin", "--cap-drop", "CAP_CHOWN", "--", "cat", "/proc/self/status")
    assert r.returncode == 0, r.stderr
    eff = int(status_field(r.stdout, "CapEff"), 16)
    assert eff == (0xA80425FB | 1 << 12) & ~1
    r = minirt("run", "--rm", "--cap-drop", "ALL", "--", "cat", "/proc/self/status")
    assert int(status_field(r.stdout, "CapBnd"), 16) == 0


def test_privileged_keeps_every_capability_and_unmasks(minirt):
    r = minirt("run", "--rm", "--privileged", "--", "sh", "-c", "cat /proc/self/status; ls /sys/firmware | wc -l")
    assert r.returncode == 0, r.stderr
    host = open("/proc/self/status").read()
    assert status_field(r.stdout, "CapBnd") == status_field(host, "CapBnd")


def test_masked_and_readonly_paths(minirt):
    masked = [p for p in ("/proc/kcore", "/proc/keys", "/proc/timer_list", "/proc/sched_debug") if os.path.exists(p)]
    assert masked, "no maskable /proc file on this kernel"
    script = "for f in " + " ".join(masked) + "; do wc -c < $f; done; ls /sys/firmware | wc -l;"
    script += " echo x > /proc/sys/kernel/domainname 2>&1; cat /proc/sys/kernel/domainname; echo done"
    r = minirt("run", "--rm", "--", "sh", "-c", script)
    assert r.returncode == 0, r.stderr
    out = r.stdout.splitlines()
    assert [line.strip() for line in out[: len(masked)]] == ["0"] * len(masked)  # /dev/null over each
    assert out[len(masked)].strip() == "0"  # an empty tmpfs over /sys/firmware
    assert "Read-only file system" in r.stderr
    assert out[-2] == "(none)"
    assert out[-1] == "done"


def test_sys_is_readonly_and_dev_is_minimal(minirt):
    r = minirt("run", "--rm", "--", "sh", "-c", "touch /sys/x 2>&1; ls /dev; ls -l /dev/ptmx; grep devpts /proc/mounts")
    assert "Read-only file system" in r.stdout
    names = set(r.stdout.split())
    for dev in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "fd", "stdin", "stdout", "stderr"):
        assert dev in names, dev
    assert "sda" not in names and "vda" not in names and "kmsg" not in names
    assert "-> pts/ptmx" in r.stdout
    assert "newinstance" in r.stdout or "ptmxmode=666" in r.stdout


def test_etc_files_for_none_network(minirt):
    host_resolv = "nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n"  # copied unchanged
    minirt.host.set_resolv_conf(host_resolv)
    r = minirt("run", "--rm", "--net", "none", "--hostname", "h1", "--", "sh", "-c", "cat /etc/hosts; echo ---; cat /etc/resolv.conf")
    hosts, _, resolv = r.stdout.partition("---\n")
    assert "127.0.0.1\tlocalhost" in hosts and "ff02::2\tip6-allrouters" in hosts
    assert "h1" not in hosts  # Docker: no entry for itself with --net none
    assert resolv == host_resolv


def test_env_workdir_and_path(minirt):
    r = minirt("run", "--rm", "-e", "A=1", "-e", "B=two words", "-w", "/srv/new", "--", "sh", "-c", 'pwd; echo "$A|$B|$HOME|$PATH"')
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["/srv/new", "1|two words|/root|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]


def test_volumes_rw_ro_and_tmpfs(minirt, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "in").write_text("hello\n")
    r = minirt("run", "--rm", "-v", f"{data}:/data", "--", "sh", "-c", "cat /data/in; echo out > /data/out")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "hello\n"
    assert (data / "out").read_text() == "out\n"
    r = minirt("run", "--rm", "-v", f"{data}:/data:ro", "--", "sh", "-c", "echo no > /data/out2")
    assert r.returncode != 0 and "Read-only file system" in r.stderr
    assert not (data / "out2").exists()
    r = minirt("run", "--rm", "--tmpfs", "/scratch", "--", "sh", "-c", "grep ' /scratch ' /proc/mounts")
    assert "tmpfs" in r.stdout and "noexec" in r.stdout


def test_volume_of_a_single_file(minirt, tmp_path):
    f = tmp_path / "conf"
    f.write_text("k=v\n")
    r = minirt("run", "--rm", "-v", f"{f}:/etc/app.conf:ro", "--", "cat", "/etc/app.conf")
    assert r.stdout == "k=v\n", r.stderr


def test_mount_over_the_root_is_refused_before_anything_is_made(minirt, tmp_path):
    # Docker: invalid mount config for type "bind": invalid specification: destination can't be '/'
    for spec in (["-v", f"{tmp_path}:/etc/../.."], ["--tmpfs", "//"]):
        r = minirt("run", *spec, "--", "true")
        assert r.returncode == 125, r.stderr
        assert r.stderr.endswith("destination can't be '/'\n") and r.stderr.count("\n") == 1, r.stderr
        assert r.stdout == ""
        assert minirt.containers() == []


def test_net_none_has_only_loopback_up(minirt):
    r = minirt("run", "--rm", "--net", "none", "--", "sh", "-c", "ls /sys/class/net; ip -o link; ip route")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "lo"
    links = [line for line in lines if ": " in line]
    assert len(links) == 1 and "lo:" in links[0] and "UP" in links[0]
    assert "default" not in r.stdout
    r = minirt("run", "--rm", "--net", "none", "--", "ping", "-c", "1", "-W", "1", "127.0.0.1")
    assert r.returncode == 0, r.stdout + r.stderr


def test_net_host_sees_host_links(minirt):
    minirt.host.run("ip", "link", "add", "mtdummy0", "type", "veth", "peer", "name", "mtdummy1")  # only this "host" has it
    host = minirt.host.run("ip", "-o", "link").stdout
    host_names = sorted(line.split(": ")[1].split("@")[0] for line in host.splitlines())
    r = minirt("run", "--rm", "--net", "host", "--", "ip", "-o", "link")
    assert r.returncode == 0, r.stderr
    names = sorted(line.split(": ")[1].split("@")[0] for line in r.stdout.splitlines())
    assert names == host_names and "mtdummy0" in names
    r = minirt("run", "--rm", "--net", "host", "--", "cat", "/etc/hosts")
    assert r.stdout == minirt.host.run("cat", "/etc/hosts").stdout
