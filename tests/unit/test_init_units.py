"""The container init's pure decisions: command resolution (126/127) and /etc file contents."""

import os

import pytest

from minirt.config import ContainerConfig
from minirt.errors import ExecError
from minirt.process.init import etc_files, resolve_command


def test_resolve_command(tmp_path):
    exe = tmp_path / "tool"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    plain = tmp_path / "data"
    plain.write_text("x")
    plain.chmod(0o644)
    (tmp_path / "dir").mkdir()
    path = f"/nonexistent:{tmp_path}"
    assert resolve_command("tool", path) == f"{tmp_path}/tool"
    assert resolve_command(str(exe), "") == str(exe)
    cases = [
        ("nope", 127, 'exec "nope": executable file not found in $PATH'),
        ("data", 126, 'exec "data": permission denied'),
        (str(tmp_path / "dir"), 126, "is a directory"),
        ("/no/such/thing", 127, "no such file or directory"),
    ]
    for arg, code, msg in cases:
        with pytest.raises(ExecError) as e:
            resolve_command(arg, path)
        assert e.value.exit_code == code and msg in str(e.value)


def _cfg(net):
    return ContainerConfig(net=net, hostname="box")


def test_etc_files():
    host = {"resolv.conf": "nameserver 192.0.2.53\n", "hosts": "127.0.0.1 hostfile\n"}
    none = etc_files(_cfg("none"), {}, host)
    assert none["hostname"] == "box\n"
    assert none["hosts"].count("\n") == 6 and "box" not in none["hosts"]
    assert none["resolv.conf"] == "nameserver 192.0.2.53\n"
    bridge = etc_files(_cfg("bridge"), {"address": "172.17.0.2", "resolv_conf": "nameserver 1.1.1.1\n"}, host)
    assert bridge["hosts"].splitlines()[-1] == "172.17.0.2\tbox"
    assert bridge["resolv.conf"] == "nameserver 1.1.1.1\n"
    assert etc_files(_cfg("host"), {}, host)["hosts"] == "127.0.0.1 hostfile\n"
