"""minirt.oci.spec: config.json -> what minirt-oci builds; refusals; seccomp conversion; the
state JSON; cgroup writes. Plus the CLI's flag parsing and signal names (minirt.oci.cli,
minirt.oci.commands), which are pure."""

import copy
import json

import pytest

from minirt.errors import ConfigError
from minirt.oci import spec
from minirt.seccomp import profile as prof
from tests.helpers.oci import runc_spec

BUNDLE = "/b"


def load(**changes):
    cfg = runc_spec("rootfs", ["sh"], "a/b/c1")
    for path, value in changes.items():
        obj = cfg
        keys = path.split("__")
        for k in keys[:-1]:
            obj = obj.setdefault(k, {})
        obj[keys[-1]] = value
    return spec.load(cfg, BUNDLE, "c1")


def refused(match: str, **changes):
    with pytest.raises(ConfigError, match=match):
        load(**changes)


# --- the runc spec default -------------------------------------------------------------------------

def test_runc_spec_default():
    sp = load()
    assert sp.root == "/b/rootfs" and sp.readonly is True
    assert sp.cfg.argv == ["sh"] and sp.cfg.workdir == "/" and sp.cfg.hostname == "runc"
    assert sp.cfg.net == "none" and sp.cfg.cgroupns == "host"
    assert sp.namespaces == {"pid": None, "network": None, "ipc": None, "uts": None, "mount": None}
    # CAP_AUDIT_WRITE 29, CAP_KILL 5, CAP_NET_BIND_SERVICE 10
    assert sp.caps["bounding"] == [5, 10, 29] and sp.caps["inheritable"] == [] and sp.caps["ambient"] == [5, 10, 29]
    assert sp.rlimits == [[7, 1024, 1024]] and sp.no_new_privs is True
    assert sp.user == {"uid": 0, "gid": 0, "additionalGids": [], "umask": None}
    assert sp.cgroups_path == ("a/b", "c1")
    assert [m.destination for m in sp.mounts] == ["/proc", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys",
                                                  "/sys/fs/cgroup"]  # fmt: skip
    assert "/proc/kcore" in sp.masked_paths and "/proc/sys" in sp.readonly_paths
    assert sp.device_rules[0] == (False, "a", -1, -1, "rwm")  # deny all, then runc's allowed list
    assert (True, "c", 136, -1, "rwm") in sp.device_rules
    assert sp.seccomp is None and sp.hooks == {} and sp.terminal is False and sp.propagation == 0


def test_mount_options():
    dev = load().mounts[1]
    assert dev.type == "tmpfs" and dev.flags == spec.MS_NOSUID | spec.MS_STRICTATIME
    assert dev.data == "mode=755,size=65536k"
    pts = load().mounts[2]
    assert pts.flags == spec.MS_NOSUID | spec.MS_NOEXEC and pts.data == "newinstance,ptmxmode=0666,mode=0620,gid=5"
    sysfs = load().mounts[5]
    assert sysfs.flags == spec.MS_NOSUID | spec.MS_NOEXEC | spec.MS_NODEV | spec.MS_RDONLY


@pytest.mark.parametrize("options, flags, prop, data", [
    (["rbind", "ro"], spec.MS_BIND | spec.MS_REC | spec.MS_RDONLY, (), ""),
    (["bind", "rprivate"], spec.MS_BIND, (spec.MS_PRIVATE | spec.MS_REC,), ""),
    (["ro", "rw"], 0, (), ""),  # in order: the later one wins
    (["nosuid", "suid", "nodev", "noexec", "relatime"], spec.MS_NODEV | spec.MS_NOEXEC | spec.MS_RELATIME, (), ""),
    (["defaults", "size=1m", "mode=700"], 0, (), "size=1m,mode=700"),
    (["rslave", "shared", "runbindable"], 0, (spec.MS_SLAVE | spec.MS_REC, spec.MS_SHARED,
                                              spec.MS_UNBINDABLE | spec.MS_REC), ""),
    (["noatime", "nodiratime", "strictatime", "nostrictatime", "sync", "dirsync", "mand"],
     spec.MS_NOATIME | spec.MS_NODIRATIME | spec.MS_SYNCHRONOUS | spec.MS_DIRSYNC | spec.MS_MANDLOCK, (), ""),
])  # fmt: skip
def test_parse_mount_options(options, flags, prop, data):
    assert spec.parse_mount_options(options, "m") == (flags, prop, data)


def test_bind_mounts():
    m = spec.parse_mount({"destination": "/data/", "type": "bind", "source": "vol", "options": ["ro"]}, 0, BUNDLE)
    assert m.source == "/b/vol" and m.destination == "/data" and m.bind and m.flags & spec.MS_RDONLY
    m = spec.parse_mount({"destination": "/x", "source": "/h", "options": ["rbind"]}, 0, BUNDLE)
    assert m.type == "bind" and m.flags == spec.MS_BIND | spec.MS_REC and m.source == "/h"
    assert spec.Mount.from_dict(m.to_dict()).to_dict() == m.to_dict()
    m = spec.parse_mount({"destination": "/tmp", "type": "tmpfs", "options": ["tmpcopyup", "mode=1777"]}, 0, BUNDLE)
    assert m.copyup and m.data == "mode=1777"


@pytest.mark.parametrize("mount, match", [
    ({"destination": "/x", "type": "bind", "source": "/h", "options": ["tmpcopyup"]}, "tmpcopyup is for tmpfs"),
    ({"destination": "/x", "type": "bind", "source": "/h", "options": ["rro"]}, "recursive mount attribute"),
    ({"destination": "/x", "type": "bind", "source": "/h", "options": ["idmap"]}, "idmapped"),
    ({"destination": "/x", "type": "bind", "source": "/h", "uidMappings": [{}]}, "idmapped"),
    ({"destination": "x", "type": "tmpfs"}, "absolute"),
    ({"destination": "/x", "type": "nfs", "source": "h:/e"}, "mount type 'nfs' is not supported"),
    ({"destination": "/x", "type": "bind"}, "needs a source"),
    ({"destination": "/x"}, "type is missing"),
    ({"destination": "/x", "type": "tmpfs", "options": ["remount"]}, "remount"),
])  # fmt: skip
def test_mount_refusals(mount, match):
    with pytest.raises(ConfigError, match=match):
        spec.parse_mount(mount, 0, BUNDLE)


# --- refusals ------------------------------------------------------------------------------------

def test_refusals():
    refused("systemd", linux__cgroupsPath="system.slice:docker:c1")
    refused("may not contain", linux__cgroupsPath="../../x")
    refused("time namespaces", linux__namespaces=[{"type": "mount"}, {"type": "time"}])
    refused("mount namespace is required", linux__namespaces=[{"type": "pid"}])
    refused("joining an existing user namespace", linux__namespaces=[{"type": "mount"},
                                                                     {"type": "user", "path": "/proc/1/ns/user"}])
    refused("listed twice", linux__namespaces=[{"type": "mount"}, {"type": "mount"}])
    refused("AppArmor", process__apparmorProfile="docker-default")
    refused("SELinux", process__selinuxLabel="system_u:system_r:container_t:s0")
    refused("SELinux", linux__mountLabel="x")
    refused("hugetlb", linux__resources__hugepageLimits=[{"pageSize": "2MB", "limit": 1}])
    refused("kernel memory", linux__resources__memory={"kernel": 1 << 20})
    refused("net_cls", linux__resources__network={"classID": 1})
    refused("real-time", linux__resources__cpu={"realtimeRuntime": 1})
    refused("per-device", linux__resources__blockIO={"weightDevice": [{"major": 8, "minor": 0, "weight": 10}]})
    refused("unknown hook", hooks={"prestop": []})
    refused("must be positive", hooks={"prestart": [{"path": "/x", "timeout": 0}]})
    refused("must be absolute", hooks={"prestart": [{"path": "x"}]})
    refused("unknown capability", process__capabilities={"bounding": ["CAP_NOPE"]})
    refused("unknown rlimit", process__rlimits=[{"type": "RLIMIT_NOPE", "soft": 1, "hard": 1}])
    refused("listed twice", process__rlimits=[{"type": "RLIMIT_NOFILE", "soft": 1, "hard": 1}] * 2)
    refused("must name a program", process__args=[])
    refused("Intel RDT", linux__intelRdt={"closID": "x"})
    refused("personality", linux__personality={"domain": "LINUX32"})
    refused("uidMappings", linux__namespaces=[{"type": "mount"}, {"type": "user"}])
    refused("private UTS", linux__namespaces=[{"type": "mount"}])
    refused("host's network", linux__sysctl={"net.ipv4.ip_forward": "1"},
            linux__namespaces=[{"type": "mount"}, {"type": "uts"}])
    refused("1.x runtime-spec", ociVersion="2.0.0")
    refused("for Windows", process__user={"username": "x"})
    refused("another platform", windows={"layerFolders": []})
    refused("listenerPath", linux__seccomp={"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/s"})
    refused("SCMP_ACT_NOTIFY", linux__seccomp={"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]})  # fmt: skip


def test_namespaces_paths_and_userns():
    sp = load(linux__namespaces=[{"type": "mount"}, {"type": "uts"}, {"type": "network", "path": "/run/netns/x"},
                                 {"type": "user"}], linux__uidMappings=[{"containerID": 0, "hostID": 1000,
                                                                         "size": 10}],
              linux__gidMappings=[{"containerID": 0, "hostID": 2000, "size": 10}])  # fmt: skip
    assert sp.namespaces["network"] == "/run/netns/x" and sp.namespaces["user"] is None
    assert sp.cfg.uidmap == [[0, 1000, 10]] and sp.cfg.gidmap == [[0, 2000, 10]]
    assert load(linux__cgroupsPath="/abs/c").cgroups_path == ("/abs", "c")
    assert load(linux__cgroupsPath="").cgroups_path == ("/", "c1")


def test_process_and_devices():
    sp = load(process__user={"uid": 1000, "gid": 100, "additionalGids": [5], "umask": 0o27},
              process__oomScoreAdj=-500, process__terminal=True, process__consoleSize={"height": 30, "width": 100},
              linux__devices=[{"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o600}],
              linux__sysctl={"net.ipv4.ip_forward": "1"}, hostname="h", domainname="d")  # fmt: skip
    assert sp.user == {"uid": 1000, "gid": 100, "additionalGids": [5], "umask": 0o27}
    assert sp.cfg.oom_score_adj == -500 and sp.terminal and sp.console_size == [30, 100]
    assert sp.cfg.devices[0]["path_in_container"] == "/dev/fuse" and sp.cfg.devices[0]["mode"] == 0o600
    assert (True, "c", 10, 229, "rwm") in sp.device_rules
    assert sp.cfg.sysctls == {"net.ipv4.ip_forward": "1"} and sp.domainname == "d"
    assert load(process__capabilities=None).caps is None  # no capabilities: the full set, as runc


def test_check_id():
    assert spec.check_id("abc_1-2.3+x") == "abc_1-2.3+x"
    for bad in ("", ".", "..", "a/b", "a b", "é"):
        with pytest.raises(ConfigError, match="invalid container id"):
            spec.check_id(bad)


# --- seccomp -------------------------------------------------------------------------------------

OCI_SECCOMP = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "defaultErrnoRet": 38,
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
    "flags": ["SECCOMP_FILTER_FLAG_LOG"],
    "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
        {"names": ["kill"], "action": "SCMP_ACT_ERRNO"},  # errno = default's: dropped by plan()
    ],
}  # fmt: skip


def test_seccomp_conversion():
    profile, flags = spec.seccomp_profile(copy.deepcopy(OCI_SECCOMP))
    assert flags == 2
    assert profile["architectures"] == ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"] and profile["defaultErrnoRet"] == 38
    assert profile["syscalls"][1]["args"] == [{"index": 0, "value": 8, "valueTwo": 0, "op": "SCMP_CMP_EQ"}]
    # round trip through JSON, as create hands it to the compiler, and minirt's rule planner
    plan = prof.plan(json.loads(json.dumps(profile)), (), "x86_64", "6.18.0")
    assert plan.enabled and plan.default_action == 0x00050000 | 38 and plan.arches == ("x86_64", "x86")
    assert prof.Rule(["read", "write"], 0x7FFF0000) in plan.rules
    assert prof.Rule(["personality"], 0x7FFF0000, ((0, 4, 8, 0),)) in plan.rules
    assert prof.Rule(["mkdir"], 0x00050001) in plan.rules
    assert len(plan.rules) == 4  # kill: ERRNO(EPERM) differs from the default's ERRNO(38), kept


@pytest.mark.parametrize("change, match", [
    ({"defaultAction": "SCMP_ACT_NOPE"}, "unsupported action"),
    ({"flags": ["SECCOMP_FILTER_FLAG_NEW_LISTENER"]}, "unsupported flag"),
    ({"architectures": ["SCMP_ARCH_VAX"]}, "unknown architecture"),
    ({"syscalls": [{"names": [], "action": "SCMP_ACT_ALLOW"}]}, "at least one"),
    ({"syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 6, "op": "SCMP_CMP_EQ"}]}]},
     "out of range"),
    ({"syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "op": "SCMP_CMP_NOPE"}]}]},
     "unsupported operator"),
])  # fmt: skip
def test_seccomp_refusals(change, match):
    with pytest.raises(ConfigError, match=match):
        spec.seccomp_profile(dict(OCI_SECCOMP, **change))


def test_seccomp_none():
    assert spec.seccomp_profile(None) == (None, 0)


# --- cgroups -------------------------------------------------------------------------------------

def test_resources_v1_writes():
    res = spec.resources({"memory": {"limit": 64 << 20, "swap": 128 << 20, "reservation": 32 << 20,
                                     "swappiness": 10, "disableOOMKiller": True},
                          "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
                          "pids": {"limit": 100}, "blockIO": {"weight": 500, "throttleReadBpsDevice": [
                              {"major": 8, "minor": 0, "rate": 1024}]}})  # fmt: skip
    w = spec.v1_writes(res)
    assert w == [
        ("cpuset", "cpuset.cpus", "0"), ("cpuset", "cpuset.mems", "0"),
        ("memory", "memory.limit_in_bytes", str(64 << 20)), ("memory", "memory.memsw.limit_in_bytes", str(128 << 20)),
        ("memory", "memory.soft_limit_in_bytes", str(32 << 20)), ("memory", "memory.oom_control", "1"),
        ("memory", "memory.swappiness", "10"), ("cpu", "cpu.shares", "512"), ("cpu", "cpu.cfs_period_us", "100000"),
        ("cpu", "cpu.cfs_quota_us", "50000"), ("pids", "pids.max", "100"), ("blkio", "blkio.weight", "500"),
        ("blkio", "blkio.throttle.read_bps_device", "8:0 1024"),
    ]  # fmt: skip


def test_memory_order_and_defaults():
    # runc setMemoryAndSwap: memsw first when raising above the current limit
    res = spec.resources({"memory": {"limit": 256 << 20, "swap": 512 << 20}})
    assert [f for _, f, _ in spec.v1_writes(res, current_limit=64 << 20)] == ["memory.memsw.limit_in_bytes",
                                                                             "memory.limit_in_bytes"]  # fmt: skip
    assert [f for _, f, _ in spec.v1_writes(res, current_limit=1 << 30)] == ["memory.limit_in_bytes",
                                                                            "memory.memsw.limit_in_bytes"]  # fmt: skip
    # unlike Docker, no doubled swap when swap is not given; -1 lifts both
    assert spec.v1_writes(spec.resources({"memory": {"limit": 1 << 26}})) == [
        ("memory", "memory.limit_in_bytes", str(1 << 26))]  # fmt: skip
    assert spec.v1_writes(spec.resources({"memory": {"limit": -1}}), current_limit=1 << 26) == [
        ("memory", "memory.memsw.limit_in_bytes", "-1"), ("memory", "memory.limit_in_bytes", "-1")]  # fmt: skip
    assert spec.v1_writes(spec.resources({"pids": {"limit": -1}})) == [("pids", "pids.max", "max")]
    assert spec.v1_writes(spec.resources({"pids": {"limit": 0}})) == []


def test_resources_v2_writes():
    res = spec.resources({"memory": {"limit": 64 << 20, "swap": 96 << 20}, "cpu": {"shares": 1024, "quota": 50000,
                          "period": 100000}, "pids": {"limit": 10}, "unified": {"memory.high": "50M"}})  # fmt: skip
    assert spec.v2_writes(res) == [("pids.max", "10"), ("memory.swap.max", str(32 << 20)),
                                   ("memory.max", str(64 << 20)), ("cpu.weight", "39"), ("cpu.max", "50000 100000"),
                                   ("memory.high", "50M")]  # fmt: skip
    with pytest.raises(ConfigError, match="v2"):
        spec.v1_writes(res)


def test_device_rules():
    assert spec.device_rules([{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"},
                              {"allow": False}]) == [(True, "c", 1, 3, "rw"), (False, "a", -1, -1, "rwm")]  # fmt: skip
    with pytest.raises(ConfigError, match="access"):
        spec.device_rules([{"allow": True, "access": "rwx"}])


# --- state, CLI ----------------------------------------------------------------------------------

def test_state_json():
    st = spec.state_json("c1", "running", 42, "/b", "/b/rootfs", "2026-01-01T00:00:00Z", {"a": "b"})
    assert st == {"ociVersion": "1.1.0", "id": "c1", "status": "running", "pid": 42, "bundle": "/b",
                  "rootfs": "/b/rootfs", "created": "2026-01-01T00:00:00Z", "annotations": {"a": "b"}}  # fmt: skip
    assert spec.state_json("c1", "stopped", 42, "/b")["pid"] == 0  # runc reports no pid once stopped


def test_cli_flags():
    from minirt.oci import cli

    table = cli.COMMANDS["create"][0]
    opts, pos = cli.parse_flags(table, ["--bundle=/b", "-pid-file", "/p", "--no-pivot", "c1", "--preserve-fds", "2"],
                                False)  # fmt: skip
    assert opts == {"bundle": "/b", "pid-file": "/p", "no-pivot": True, "preserve-fds": "2"} and pos == ["c1"]
    opts, pos = cli.parse_flags(cli.COMMANDS["exec"][0], ["-d", "--env", "A=1", "-e", "B=2", "c1", "ls", "-l"], True)
    assert opts == {"detach": True, "env": ["A=1", "B=2"]} and pos == ["c1", "ls", "-l"]
    opts, _ = cli.parse_flags(cli.COMMANDS["delete"][0], ["--force=false", "c1"], False)
    assert opts == {"force": False}
    with pytest.raises(cli.UsageError, match="not defined: -nope"):
        cli.parse_flags(table, ["--nope"], False)
    with pytest.raises(cli.UsageError, match="needs an argument"):
        cli.parse_flags(table, ["--bundle"], False)


def test_signal_names():
    from minirt.oci.commands import parse_signal

    assert parse_signal("TERM") == parse_signal("SIGTERM") == parse_signal("term") == parse_signal("15") == 15
    assert parse_signal("KILL") == 9 and parse_signal("SIGUSR1") == 10
    for bad in ("NOPE", "0", "99"):
        with pytest.raises(Exception, match="signal"):
            parse_signal(bad)
