"""--sysctl, --ulimit and --device parsing (minirt/secopts.py) and the devices rule builder."""

import os

import pytest

from minirt import secopts
from minirt.cgroups import devices
from minirt.errors import ConfigError


@pytest.mark.parametrize("key", ["kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
                                 "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced", "fs.mqueue.msg_max",
                                 "net.ipv4.ip_forward", "net.core.somaxconn"])  # fmt: skip
def test_allowed_sysctls(key):
    assert secopts.sysctls([f"{key}=1"], "bridge") == {key: "1"}


@pytest.mark.parametrize("item", ["kernel.hostname=x", "kernel.shm=1", "vm.swappiness=1", "fs.file-max=1",
                                  "netx.y=1", "net.ipv4.ip_forward"])  # fmt: skip
def test_refused_sysctls_carry_dockers_message(item):
    with pytest.raises(ConfigError) as e:
        secopts.sysctls([item], "bridge")
    assert str(e.value) == f"invalid argument \"{item}\" for \"--sysctl\" flag: sysctl '{item}' is not whitelisted"


def test_net_sysctls_refused_with_host_network_only():
    with pytest.raises(ConfigError, match=r'^sysctl "net.ipv4.ip_forward" not allowed in host network namespace$'):
        secopts.sysctls(["net.ipv4.ip_forward=1"], "host")
    assert secopts.sysctls(["kernel.shmmax=1"], "host") == {"kernel.shmmax": "1"}
    assert secopts.sysctls(["net.ipv4.ip_forward=1"], "container") == {"net.ipv4.ip_forward": "1"}
    assert secopts.sysctls(["net.x=a=b", "net.x=2"], "none") == {"net.x": "2"}
    assert secopts.sysctl_path("net.ipv4.conf.eth0.rp_filter") == "net/ipv4/conf/eth0/rp_filter"


def test_ulimit_forms():
    assert secopts.parse_ulimit("nofile=1024:2048") == {"name": "nofile", "soft": 1024, "hard": 2048}
    assert secopts.parse_ulimit("nproc=50") == {"name": "nproc", "soft": 50, "hard": 50}
    assert secopts.parse_ulimit("core=-1") == {"name": "core", "soft": -1, "hard": -1}
    assert secopts.parse_ulimit("core=-1:10") == {"name": "core", "soft": -1, "hard": 10}  # go-units allows it
    assert secopts.ulimits(["nofile=1:2", "core=0", "nofile=3:4"]) == [
        {"name": "nofile", "soft": 3, "hard": 4}, {"name": "core", "soft": 0, "hard": 0}]
    assert secopts.rlimit_value(-1) == secopts.RLIM_INFINITY
    assert set(secopts.ULIMITS) == {"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
                                    "nproc", "rss", "rtprio", "rttime", "sigpending", "stack"}  # fmt: skip


@pytest.mark.parametrize("item,err", [
    ("nofile", "invalid ulimit argument: nofile"),
    ("as=1", "invalid ulimit type: as"),
    ("nofile=1:2:3", "too many limit value arguments - 1:2:3, can only have up to two, `soft[:hard]`"),
    ("nofile=unlimited", 'strconv.ParseInt: parsing "unlimited": invalid syntax'),
    ("nofile=1:x", 'strconv.ParseInt: parsing "x": invalid syntax'),
    ("nofile=99999999999999999999", 'strconv.ParseInt: parsing "99999999999999999999": value out of range'),
    ("nofile=2048:1024", "ulimit soft limit must be less than or equal to hard limit: 2048 > 1024"),
])  # fmt: skip
def test_ulimit_errors_are_go_units(item, err):
    with pytest.raises(ConfigError) as e:
        secopts.parse_ulimit(item)
    assert str(e.value) == f'invalid argument "{item}" for "--ulimit" flag: {err}'


def test_device_specs():
    p = secopts.parse_device
    assert p("/dev/null") == {"path_on_host": "/dev/null", "path_in_container": "/dev/null", "permissions": "rwm"}
    assert p("/dev/null:/dev/x")["path_in_container"] == "/dev/x"
    assert p("/dev/null:r") == {"path_on_host": "/dev/null", "path_in_container": "/dev/null", "permissions": "r"}
    assert p("/dev/null:/dev/x/../y:wm")["path_in_container"] == "/dev/y"
    assert p("/dev/null:/dev/x:mr")["permissions"] == "mr"


@pytest.mark.parametrize("spec,err", [
    ("/dev/null:/a:r:x", "bad format for path: /dev/null:/a:r:x"),
    (":/dev/x", "bad format for path: :/dev/x"),
    ("/dev/null:/dev/x:rwx", "bad mode specified: rwx"),
    ("/dev/null:/dev/x:rr", "bad mode specified: rr"),
    ("/dev/null:dev/x", "dev/x is not an absolute path"),
])  # fmt: skip
def test_bad_device_specs(spec, err):
    with pytest.raises(ConfigError) as e:
        secopts.parse_device(spec)
    assert str(e.value) == f'invalid argument "{spec}" for "--device" flag: {err}'


def test_device_info_from_the_host_node(tmp_path):
    d = secopts.device_info(secopts.parse_device("/dev/null:/dev/n:r"))
    st = os.stat("/dev/null")
    assert (d["type"], d["major"], d["minor"]) == ("c", 1, 3)
    assert d["mode"] == st.st_mode & 0o7777 and d["uid"] == st.st_uid
    with pytest.raises(ConfigError, match=r'^error gathering device information while adding custom device '
                                          r'"/nonexistent/x": no such file or directory$'):  # fmt: skip
        secopts.device_info(secopts.parse_device("/nonexistent/x"))
    f = tmp_path / "f"
    f.write_text("")
    with pytest.raises(ConfigError, match="not a device node"):
        secopts.device_info(secopts.parse_device(str(f)))


# What Docker 20.10 on runc 1.1 shows in devices.list for a default container (kept in order:
# moby's DefaultLinuxSpec, then runc's AllowedDevices).
DOCKER_RULES = [
    "deny a",
    "allow c 1:5 rwm", "allow c 1:3 rwm", "allow c 1:9 rwm", "allow c 1:8 rwm", "allow c 5:0 rwm", "allow c 5:1 rwm",
    "allow c *:* m", "allow b *:* m", "allow c 1:3 rwm", "allow c 1:8 rwm", "allow c 1:7 rwm", "allow c 5:0 rwm",
    "allow c 1:5 rwm", "allow c 1:9 rwm", "allow c 136:* rwm", "allow c 5:2 rwm", "allow c 10:200 rwm",
]  # fmt: skip


def _texts(rule_list):
    return [("allow " if r[0] else "deny ") + devices.rule_text(r) for r in rule_list]


def test_default_rules_equal_dockers():
    assert _texts(devices.rules(False, [])) == DOCKER_RULES
    assert _texts(devices.rules(False, None)) == DOCKER_RULES


def test_device_rules_go_between_mobys_and_runcs():
    dev = {"type": "b", "major": 7, "minor": 0, "permissions": "r"}
    got = _texts(devices.rules(False, [dev]))
    assert got == DOCKER_RULES[:7] + ["allow b 7:0 r"] + DOCKER_RULES[7:]


def test_privileged_allows_everything():
    assert _texts(devices.rules(True, [{"type": "c", "major": 1, "minor": 3, "permissions": "r"}])) == ["allow a"]


def test_v1_writes():
    writes = devices.v1_writes(devices.rules(False, []))
    assert writes[0] == ("devices.deny", "a")
    assert writes[1] == ("devices.allow", "c 1:5 rwm")
    assert ("devices.allow", "c 136:* rwm") in writes
    assert devices.v1_writes(devices.rules(True, [])) == [("devices.allow", "a")]
