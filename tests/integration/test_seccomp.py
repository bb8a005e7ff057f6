"""Seccomp against the real kernel: Docker's default profile by default, unconfined on request or
with --privileged, custom Docker-format profiles, and the calls Docker's profile blocks.

The calls are made by tests/probes/probe.c (built static by `make probes`, bind-mounted as
/probe), which prints "OK" or the errno's name; every probe is harmless if it succeeds.
"""

import json
import os
import re

import pytest

from tests.conftest import REPO

PROBE = f"{REPO}/build/probes/probe"
PROFILE = f"{REPO}/minirt/seccomp/default.json"


def status(text: str, name: str) -> str:
    m = re.search(rf"^{name}:\s*(\S+)", text, re.M)
    assert m, f"{name} not in {text!r}"
    return m.group(1)


def probe(minirt, *args: str, opts: tuple = ()) -> str:
    assert os.access(PROBE, os.X_OK), f"{PROBE} missing: `make probes` builds it (make test does)"
    r = minirt("run", "--rm", "--net", "none", "-v", f"{PROBE}:/probe:ro", *opts, "--", "/probe", *args)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


@pytest.mark.parametrize("opts, mode", [((), "2"), (("--security-opt", "seccomp=unconfined"), "0"),
                                        (("--privileged",), "0"), (("--security-opt", "seccomp=builtin"), "2")])
def test_proc_status_shows_the_filter(minirt, opts, mode):
    r = minirt("run", "--rm", "--net", "none", *opts, "--", "cat", "/proc/self/status")
    assert r.returncode == 0, r.stderr
    assert status(r.stdout, "Seccomp") == mode
    assert status(r.stdout, "Seccomp_filters") == ("1" if mode == "2" else "0")
    assert status(r.stdout, "NoNewPrivs") == "1"


def test_init_reaper_and_command_are_both_filtered(minirt):
    r = minirt("run", "--rm", "--net", "none", "--init", "--", "sh", "-c",
               "grep '^Seccomp:' /proc/self/status /proc/1/status")  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("Seccomp:\t2") == 2, r.stdout


@pytest.mark.parametrize("opts, mode", [((), "2"), (("--security-opt", "seccomp=unconfined"), "0")])
def test_exec_gets_the_containers_filter(minirt, uniq, opts, mode):
    r = minirt("run", "-d", "--name", uniq, "--net", "none", "-v", f"{PROBE}:/probe:ro", *opts, "--", "sleep", "60")
    assert r.returncode == 0, r.stderr
    try:
        r = minirt("exec", uniq, "cat", "/proc/self/status")
        assert r.returncode == 0, r.stderr
        assert status(r.stdout, "Seccomp") == mode
        # the record keeps the program's key; the cached program serves exec
        r = minirt("exec", uniq, "/probe", "keyctl")
        assert r.stdout.strip() == ("EPERM" if mode == "2" else "OK"), r.stderr
    finally:
        minirt("rm", "-f", uniq)


def test_unshare_needs_sys_admin(minirt):
    r = minirt("run", "--rm", "--net", "none", "--", "unshare", "-n", "true")
    assert r.returncode != 0
    assert "Operation not permitted" in r.stderr
    r = minirt("run", "--rm", "--net", "none", "--cap-add", "SYS_ADMIN", "--", "unshare", "-n", "true")
    assert r.returncode == 0, r.stderr


def test_custom_profile_blocks_mkdir(minirt, tmp_path):
    """Docker's own profile with mkdir/mkdirat taken out of the allow list: the default action
    (EPERM) answers them."""
    profile = json.load(open(PROFILE))
    for group in profile["syscalls"]:
        group["names"] = [n for n in group["names"] if n not in ("mkdir", "mkdirat")]
    path = tmp_path / "no-mkdir.json"
    path.write_text(json.dumps(profile))
    r = minirt("run", "--rm", "--net", "none", "--security-opt", f"seccomp={path}", "--", "mkdir", "/tmp/x")
    assert r.returncode != 0
    assert "Operation not permitted" in r.stderr
    r = minirt("run", "--rm", "--net", "none", "--", "mkdir", "/tmp/x")
    assert r.returncode == 0, r.stderr


def test_custom_profile_errno_ret(minirt, tmp_path):
    """A minimal profile: allow everything, mkdir/mkdirat answer EACCES (errnoRet 13)."""
    path = tmp_path / "eacces.json"
    path.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13}]}))  # fmt: skip
    r = minirt("run", "--rm", "--net", "none", "--security-opt", f"seccomp:{path}", "--", "mkdir", "/tmp/x")
    assert r.returncode != 0
    assert "Permission denied" in r.stderr


def test_unknown_names_are_skipped_with_a_note(minirt, tmp_path):
    path = tmp_path / "unknown.json"
    path.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
        {"names": ["no_such_call_xyz", "mkdir"], "action": "SCMP_ACT_ERRNO"}]}))  # fmt: skip
    r = minirt("run", "--rm", "--net", "none", "--explain", "--security-opt", f"seccomp={path}", "--", "true")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^\+ # seccomp: skipped syscalls unknown to libseccomp [\d.]+: no_such_call_xyz$", r.stderr,
                     re.M), r.stderr  # fmt: skip


@pytest.mark.parametrize("opt, message", [
    ("label=disable", "invalid --security-opt: 'label=disable'"),
    ("seccomp=/no/such/profile.json", "opening seccomp profile (/no/such/profile.json) failed"),
    ("bogus", "Invalid --security-opt: 'bogus'"),
])  # fmt: skip
def test_bad_security_opt_is_125(minirt, opt, message):
    r = minirt("run", "--rm", "--net", "none", "--security-opt", opt, "--", "true")
    assert r.returncode == 125
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert minirt.containers() == []


def test_bad_profile_is_125_before_anything_exists(minirt, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"defaultAction": "SCMP_ACT_NOPE"}')
    r = minirt("run", "--rm", "--net", "none", "--security-opt", f"seccomp={path}", "--", "true")
    assert r.returncode == 125
    assert "unknown action 'SCMP_ACT_NOPE'" in r.stderr
    assert minirt.containers() == []


def test_inspect_security_opt(minirt, uniq):
    assert minirt("run", "--name", uniq, "--net", "none", "--", "true").returncode == 0
    assert json.loads(minirt("inspect", uniq).stdout)[0]["HostConfig"]["SecurityOpt"] is None
    minirt("rm", uniq)
    r = minirt("run", "--name", uniq, "--net", "none", "--security-opt", "seccomp=unconfined",
               "--security-opt", "no-new-privileges", "--", "true")  # fmt: skip
    assert r.returncode == 0, r.stderr
    host = json.loads(minirt("inspect", uniq).stdout)[0]["HostConfig"]
    assert host["SecurityOpt"] == ["seccomp=unconfined", "no-new-privileges"]
    minirt("rm", uniq)


def test_cache_is_reused_and_keyed_by_caps(minirt):
    cache = f"{minirt.root}/seccomp"
    assert minirt("run", "--rm", "--net", "none", "--", "true").returncode == 0
    first = sorted(f for f in os.listdir(cache) if f.endswith(".bpf"))
    assert len(first) == 1
    assert minirt("run", "--rm", "--net", "none", "--", "true").returncode == 0
    assert sorted(f for f in os.listdir(cache) if f.endswith(".bpf")) == first
    assert minirt("run", "--rm", "--net", "none", "--cap-add", "SYS_ADMIN", "--", "true").returncode == 0
    assert len([f for f in os.listdir(cache) if f.endswith(".bpf")]) == 2


# The calls Docker's profile blocks, with the options that let each through: the escape corpus,
# tests/probes/corpus.py and tests/integration/test_escape_corpus.py.


@pytest.mark.parametrize("value", ["0", "8", "0x20000", "0x20008", "0xffffffff"])
def test_personality_values_docker_allows(minirt, value):
    assert probe(minirt, "personality", value) == "OK"
