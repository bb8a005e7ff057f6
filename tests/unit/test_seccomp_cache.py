"""minirt.seccomp: the compiled-program cache (key, hit, misses) and the compiler, no root needed
(libseccomp compiles into bytes; nothing is attached)."""

import hashlib
import json
import os

import pytest

from minirt import _syscalls, explain, seccomp
from minirt.caps import DOCKER_DEFAULT
from minirt.commands.run import security_opts
from minirt.errors import ConfigError
from minirt.seccomp.compile import compile_profile


def bpf_files(root) -> list[str]:
    return sorted(f for f in os.listdir(f"{root}/seccomp") if f.endswith(".bpf"))


def test_cached_program_equals_a_fresh_compile(tmp_path):
    prog = seccomp.program("default", DOCKER_DEFAULT, str(tmp_path))
    fresh, skipped = compile_profile(open(seccomp.PROFILE, "rb").read(), DOCKER_DEFAULT)
    assert prog.bpf == fresh
    assert open(f"{tmp_path}/seccomp/{prog.key}.bpf", "rb").read() == fresh
    # a warm hit reads the same bytes back
    again = seccomp.program("default", DOCKER_DEFAULT, str(tmp_path))
    assert again.bpf == fresh and again.key == prog.key
    assert len(fresh) % 8 == 0 and 500 < len(fresh) // 8 < 4096
    assert "mseal" in skipped or seccomp_version_knows("mseal")


def seccomp_version_knows(name: str) -> bool:
    from minirt import _seccomp

    return _seccomp.resolve_syscall(name) is not None


def test_changed_profile_misses(tmp_path):
    text = json.load(open(seccomp.PROFILE))
    path = tmp_path / "p.json"
    path.write_text(json.dumps(text))
    a = seccomp.program(str(path), DOCKER_DEFAULT, str(tmp_path))
    text["syscalls"][0]["names"].remove("mkdir")
    path.write_text(json.dumps(text))
    b = seccomp.program(str(path), DOCKER_DEFAULT, str(tmp_path))
    assert a.key != b.key and a.bpf != b.bpf
    assert len(bpf_files(tmp_path)) == 2


def test_changed_caps_miss(tmp_path):
    a = seccomp.program("default", DOCKER_DEFAULT, str(tmp_path))
    b = seccomp.program("default", DOCKER_DEFAULT | {"sys_admin"}, str(tmp_path))
    c = seccomp.program("default", DOCKER_DEFAULT - {"chown"}, str(tmp_path))
    assert len({a.key, b.key, c.key}) == 3 and a.bpf != b.bpf
    # chown is in no profile condition: a different key, the same program
    assert a.bpf == c.bpf


def test_warm_path_loads_neither_json_nor_libseccomp(tmp_path):
    """Run in a fresh interpreter: a hit must not import json or the _seccomp extension."""
    import subprocess
    import sys

    seccomp.program("default", DOCKER_DEFAULT, str(tmp_path))
    code = ("import sys; from minirt import seccomp; from minirt.caps import DOCKER_DEFAULT; "
            f"seccomp.program('default', DOCKER_DEFAULT, {str(tmp_path)!r}); "
            "print(sorted(m for m in sys.modules if m in ('json', 'minirt._seccomp', 'minirt.seccomp.compile', "
            "'minirt.jsonenc', '_sha2', '_hashlib')))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ),
                         cwd=os.path.dirname(seccomp.PROFILE))  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_version_file_follows_the_library(tmp_path):
    seccomp.program("default", DOCKER_DEFAULT, str(tmp_path))
    vfile = f"{tmp_path}/seccomp/libseccomp.version"
    version, *files = open(vfile).read().splitlines()
    assert version.count(".") == 2 and any("libseccomp.so" in f for f in files)
    # a stale identity line (the library was replaced) is noticed and the file rewritten
    with open(vfile, "w") as f:
        f.write("9.9.9\n" + files[0].rsplit(" ", 3)[0] + " 1 2 3\n")
    assert seccomp.libseccomp_version(f"{tmp_path}/seccomp") == version
    assert open(vfile).read().splitlines()[0] == version


def test_unconfined_and_privileged():
    assert seccomp.program("unconfined", DOCKER_DEFAULT, "/nonexistent") is None
    assert seccomp.effective("default", True) == "unconfined"
    assert seccomp.effective(None, False) == "default"
    assert seccomp.effective("/p.json", False) == "/p.json"


def test_skipped_names_are_explained_on_hits_too(tmp_path, capfd, monkeypatch):
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"defaultAction": "SCMP_ACT_ALLOW",
                                "syscalls": [{"names": ["no_such_call_xyz"], "action": "SCMP_ACT_KILL"}]}))
    monkeypatch.setattr(explain, "enabled", True)
    for _ in range(2):
        seccomp.program(str(path), DOCKER_DEFAULT, str(tmp_path))
        err = capfd.readouterr().err
        assert "+ # seccomp: skipped syscalls unknown to libseccomp" in err and err.rstrip().endswith(
            ": no_such_call_xyz")


def test_sha256_matches_hashlib():
    for n in (0, 1, 55, 56, 63, 64, 65, 119, 120, 128, 13470):
        data = os.urandom(n)
        assert _syscalls.sha256_hex(data) == hashlib.sha256(data).hexdigest()


def test_key_parts_are_separated():
    k = seccomp.cache_key(b"ab", {"chown"}, "2.5.4", "x86_64", "6.18.0")
    assert k != seccomp.cache_key(b"a", {"chown"}, "b2.5.4", "x86_64", "6.18.0")
    assert k != seccomp.cache_key(b"ab", {"chown"}, "2.5.4", "x86_64", "6.19.0")
    assert k == seccomp.cache_key(b"ab", frozenset({"chown"}), "2.5.4", "x86_64", "6.18.0")


def test_security_opts(tmp_path):
    assert security_opts([]) == {"seccomp": "default", "security_opt": []}
    assert security_opts(["seccomp=unconfined"]) == {"seccomp": "unconfined", "security_opt": ["seccomp=unconfined"]}
    assert security_opts(["seccomp:unconfined", "no-new-privileges"])["security_opt"] == [
        "seccomp=unconfined", "no-new-privileges"]
    assert security_opts(["seccomp=builtin"])["seccomp"] == "default"
    p = tmp_path / "x.json"
    p.write_text("{}")
    os.chdir(tmp_path)
    assert security_opts(["seccomp=x.json"]) == {"seccomp": str(p), "security_opt": [f"seccomp={p}"]}
    for bad in ("apparmor=unconfined", "bogus", "seccomp=nope.json", "no-new-privileges=false"):
        with pytest.raises(ConfigError):
            security_opts([bad])
