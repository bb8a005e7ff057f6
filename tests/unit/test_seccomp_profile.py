"""minirt.seccomp.profile: which rules of a Docker-format profile apply (moby setupSeccomp + runc)."""

import json
import os

import pytest

from minirt.caps import DOCKER_DEFAULT
from minirt.errors import ConfigError
from minirt.seccomp import profile as prof

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT = json.load(open(f"{REPO}/minirt/seccomp/default.json"))
ALLOW, EPERM_ACT = 0x7FFF0000, 0x00050001


def allowed(plan: prof.Plan) -> dict[str, list]:
    """name -> the argument conditions of each rule that allows it ([] = unconditional)."""
    out: dict[str, list] = {}
    for r in plan.rules:
        if r.action == ALLOW:
            for n in r.names:
                out.setdefault(n, []).append(r.args)
    return out


def docker(caps=DOCKER_DEFAULT, machine="x86_64", release="6.18.0"):
    return prof.plan(DEFAULT, caps, machine, release)


def test_the_profile_is_dockers():
    assert DEFAULT["defaultAction"] == "SCMP_ACT_ERRNO" and DEFAULT["defaultErrnoRet"] == 1
    assert len(DEFAULT["syscalls"]) == 33
    assert sum(len(g["names"]) for g in DEFAULT["syscalls"]) == 442


def test_default_action_and_arches():
    p = docker()
    assert p.enabled and p.default_action == EPERM_ACT
    assert p.arches == ("x86_64", "x86", "x32")
    assert docker(machine="aarch64").arches == ("aarch64", "arm")


def test_default_caps_block_what_docker_blocks():
    a = allowed(docker())
    for name in ("keyctl", "add_key", "bpf", "perf_event_open", "unshare", "mount", "setns", "reboot",
                 "init_module", "settimeofday", "clock_settime", "syslog", "fsopen"):
        assert name not in a, name
    assert a["read"] == [()] and a["execve"] == [()]
    # ptrace is allowed without SYS_PTRACE on kernels >= 4.8 (minKernel)
    assert "ptrace" in a and "ptrace" not in allowed(docker(release="4.4.0"))


def test_argument_conditions():
    a = allowed(docker())
    assert sorted(a["personality"]) == sorted([((0, 4, v, 0),) for v in (0, 8, 0x20000, 0x20008, 0xFFFFFFFF)])
    # socket: family < AF_ALG(38), == 39, > AF_VSOCK(40)
    assert sorted(a["socket"]) == [((0, 2, 38, 0),), ((0, 4, 39, 0),), ((0, 6, 40, 0),)]
    # clone without namespace flags: arg0 & 0x7E020000 == 0 (SCMP_CMP_MASKED_EQ: mask, datum)
    assert a["clone"] == [((0, 7, 0x7E020000, 0),)]
    clone3 = [r for r in docker().rules if "clone3" in r.names]
    assert [(r.action, r.args) for r in clone3] == [(0x00050000 | 38, ())]  # ENOSYS


def test_sys_admin_unlocks_its_group():
    a = allowed(docker(DOCKER_DEFAULT | {"sys_admin"}))
    for name in ("mount", "unshare", "setns", "bpf", "fsopen", "fsconfig", "clone3"):
        assert a[name] == [()], name
    assert a["clone"] == [()]  # the masked rule is excluded with CAP_SYS_ADMIN
    assert not [r for r in docker(DOCKER_DEFAULT | {"sys_admin"}).rules if r.action == 0x00050000 | 38]


@pytest.mark.parametrize("cap, names", [("sys_ptrace", ["kcmp", "pidfd_getfd", "process_madvise"]),
                                        ("sys_module", ["init_module", "finit_module"]), ("sys_time", ["settimeofday"]),
                                        ("sys_boot", ["reboot"]), ("bpf", ["bpf"]), ("perfmon", ["perf_event_open"]),
                                        ("syslog", ["syslog"])])  # fmt: skip
def test_capability_groups(cap, names):
    a = allowed(docker(DOCKER_DEFAULT | {cap}))
    assert all(n in a for n in names)


def test_arch_includes():
    assert "arch_prctl" in allowed(docker())
    assert "arch_prctl" not in allowed(docker(machine="aarch64"))
    assert "set_tls" in allowed(docker(machine="aarch64"))


def test_errno_ret_and_default():
    p = prof.plan({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
        {"name": "rmdir", "action": "SCMP_ACT_ERRNO"},
        {"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}, DOCKER_DEFAULT, "x86_64", "6.1")  # fmt: skip
    assert p.default_action == ALLOW
    # a rule with the default action is dropped (runc; libseccomp refuses it)
    assert [(r.names, r.action) for r in p.rules] == [(["mkdir"], 0x0005000D), (["rmdir"], 0x00050001)]
    assert p.arches == ()


def test_same_index_twice_becomes_separate_rules():
    p = prof.plan({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW",
                   "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 2,
                   "op": "SCMP_CMP_EQ"}, ]}]}, (), "x86_64", "6.1")  # fmt: skip
    assert [r.args for r in p.rules] == [((0, 4, 1, 0),), ((0, 4, 2, 0),)]
    p = prof.plan({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["x"], "action": "SCMP_ACT_ALLOW",
                   "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 1, "value": 3,
                   "valueTwo": 2, "op": "SCMP_CMP_MASKED_EQ"}]}]}, (), "x86_64", "6.1")  # fmt: skip
    assert [r.args for r in p.rules] == [((0, 4, 1, 0), (1, 7, 3, 2))]


def test_empty_profile_disables():
    assert not prof.plan({}, (), "x86_64", "6.1").enabled


@pytest.mark.parametrize("bad, message", [
    ({"defaultAction": "SCMP_ACT_NOPE"}, "unknown action"),
    ({"defaultAction": "SCMP_ACT_NOTIFY"}, "listener"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86"], "archMap": [{}]}, "either"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ALLOW"}]},
     "both 'name' and 'names'"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW",
                                                       "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
     "index 7"),
    ({"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["a"], "action": "SCMP_ACT_ALLOW",
                                                       "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}]}]},
     "unknown comparison"),
    ([], "not a JSON object"),
])  # fmt: skip
def test_bad_profiles(bad, message):
    with pytest.raises(ConfigError, match=message):
        prof.plan(bad, (), "x86_64", "6.1")


def test_kernel_version():
    assert prof.kernel_version("6.18.0-1-amd64") == (6, 18)
    assert prof.kernel_version("4.8") == (4, 8)
    assert prof.kernel_version("3.12-1-amd64") == (3, 12)
