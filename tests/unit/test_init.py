"""minirt.process.init: the pure helpers resolve_command and etc_files (child_main is never run here)."""

import os

import pytest

from minirt.config import ContainerConfig
from minirt.errors import ExecError
from minirt.process import init
from minirt.process.init import STANDARD_HOSTS, etc_files, resolve_command


def make_exe(path, mode=0o755):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\n")
    os.chmod(path, mode)
    return str(path)


# ---- resolve_command ------------------------------------------------------------------------


def test_finds_executable_in_path(tmp_path):
    exe = make_exe(tmp_path / "bin" / "tool")
    path = f"{tmp_path}/empty:{tmp_path}/bin"
    assert resolve_command("tool", path) == exe


def test_first_match_in_path_wins(tmp_path):
    first = make_exe(tmp_path / "a" / "tool")
    make_exe(tmp_path / "b" / "tool")
    assert resolve_command("tool", f"{tmp_path}/a:{tmp_path}/b") == first


def test_non_executable_earlier_in_path_is_skipped(tmp_path):
    make_exe(tmp_path / "a" / "tool", 0o644)
    (tmp_path / "b" / "tool").mkdir(parents=True)
    exe = make_exe(tmp_path / "c" / "tool")
    assert resolve_command("tool", f"{tmp_path}/a:{tmp_path}/b:{tmp_path}/c") == exe


def test_missing_name_is_127(tmp_path):
    make_exe(tmp_path / "bin" / "other")
    with pytest.raises(ExecError) as ei:
        resolve_command("nope", f"{tmp_path}/bin:{tmp_path}/missing")
    assert ei.value.exit_code == 127
    assert str(ei.value) == 'exec "nope": executable file not found in $PATH'


def test_empty_path_variable_is_127(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ExecError, match="executable file not found in \\$PATH") as ei:
        resolve_command("sh", "")
    assert ei.value.exit_code == 127


def test_empty_path_element_means_current_directory(tmp_path, monkeypatch):
    make_exe(tmp_path / "tool")
    monkeypatch.chdir(tmp_path)
    assert resolve_command("tool", f"{tmp_path}/missing:") == "./tool"


def test_non_executable_file_is_126(tmp_path):
    make_exe(tmp_path / "bin" / "tool", 0o644)  # no x bit at all: denied even for root
    with pytest.raises(ExecError) as ei:
        resolve_command("tool", f"{tmp_path}/bin")
    assert ei.value.exit_code == 126
    assert str(ei.value) == 'exec "tool": permission denied'


def test_directory_is_126(tmp_path):
    (tmp_path / "bin" / "tool").mkdir(parents=True)
    with pytest.raises(ExecError) as ei:
        resolve_command("tool", f"{tmp_path}/bin")
    assert ei.value.exit_code == 126
    assert str(ei.value) == 'exec "tool": is a directory'


def test_first_denial_is_reported(tmp_path):
    (tmp_path / "a" / "tool").mkdir(parents=True)
    make_exe(tmp_path / "b" / "tool", 0o644)
    with pytest.raises(ExecError, match="is a directory"):
        resolve_command("tool", f"{tmp_path}/a:{tmp_path}/b")


def test_absolute_path(tmp_path):
    exe = make_exe(tmp_path / "tool")
    assert resolve_command(exe, "/nonexistent") == exe


def test_absolute_path_ignores_path_variable(tmp_path):
    make_exe(tmp_path / "bin" / "tool")
    with pytest.raises(ExecError) as ei:
        resolve_command(f"{tmp_path}/tool", f"{tmp_path}/bin")
    assert ei.value.exit_code == 127
    assert str(ei.value) == f'exec "{tmp_path}/tool": no such file or directory'


def test_absolute_non_executable_and_directory_are_126(tmp_path):
    f = make_exe(tmp_path / "f", 0o644)
    with pytest.raises(ExecError, match="permission denied") as ei:
        resolve_command(f, "")
    assert ei.value.exit_code == 126
    with pytest.raises(ExecError, match="is a directory") as ei:
        resolve_command(str(tmp_path), "")
    assert ei.value.exit_code == 126


def test_relative_path_with_slash_is_not_searched(tmp_path, monkeypatch):
    make_exe(tmp_path / "sub" / "tool")
    monkeypatch.chdir(tmp_path)
    assert resolve_command("./sub/tool", "/nonexistent") == "./sub/tool"
    assert resolve_command("sub/tool", "/nonexistent") == "sub/tool"
    with pytest.raises(ExecError) as ei:
        resolve_command("tool", "")  # not in cwd, no PATH entry
    assert ei.value.exit_code == 127


def test_symlinks(tmp_path):
    exe = make_exe(tmp_path / "real" / "tool")
    (tmp_path / "bin").mkdir()
    os.symlink(exe, tmp_path / "bin" / "tool")
    os.symlink(tmp_path / "missing", tmp_path / "bin" / "dangling")
    assert resolve_command("tool", f"{tmp_path}/bin") == f"{tmp_path}/bin/tool"
    with pytest.raises(ExecError) as ei:
        resolve_command("dangling", f"{tmp_path}/bin")
    assert ei.value.exit_code == 127


# ---- etc_files ------------------------------------------------------------------------------

HOST_FILES = {"hostname": "hosty", "resolv.conf": "nameserver 192.0.2.53\n", "hosts": "127.0.0.1\thost-entry\n"}


def cfg(net: str, hostname: str = "c0ffee123456") -> ContainerConfig:
    return ContainerConfig(net=net, hostname=hostname)


def test_standard_hosts_lines():
    assert STANDARD_HOSTS.splitlines() == [
        "127.0.0.1\tlocalhost",
        "::1\tlocalhost ip6-localhost ip6-loopback",
        "fe00::0\tip6-localnet",
        "ff00::0\tip6-mcastprefix",
        "ff02::1\tip6-allnodes",
        "ff02::2\tip6-allrouters",
    ]


def test_net_none():
    files = etc_files(cfg("none"), {}, HOST_FILES)
    assert set(files) == {"hostname", "hosts", "resolv.conf"}
    assert files["hostname"] == "c0ffee123456\n"
    assert files["hosts"] == STANDARD_HOSTS
    assert len(files["hosts"].splitlines()) == 6
    assert "c0ffee123456" not in files["hosts"]
    assert files["resolv.conf"] == HOST_FILES["resolv.conf"]


def test_net_with_address_maps_the_hostname():
    files = etc_files(cfg("bridge", "box"), {"address": "10.0.0.2"}, HOST_FILES)
    lines = files["hosts"].splitlines()
    assert len(lines) == 7
    assert files["hosts"].startswith(STANDARD_HOSTS)
    assert lines[-1] == "10.0.0.2\tbox"
    assert files["hosts"].endswith("\n")
    assert files["hostname"] == "box\n"


def test_net_resolv_conf_from_the_network():
    files = etc_files(cfg("bridge"), {"address": "10.0.0.2", "resolv_conf": "nameserver 10.0.0.1\n"}, HOST_FILES)
    assert files["resolv.conf"] == "nameserver 10.0.0.1\n"


def test_net_host_copies_host_files():
    files = etc_files(cfg("host", "hosty"), {"address": "10.0.0.2", "resolv_conf": "ignored"}, HOST_FILES)
    assert files == {"hostname": "hosty\n", "hosts": HOST_FILES["hosts"], "resolv.conf": HOST_FILES["resolv.conf"]}


def test_read_host_files_reads_hosts_only_for_net_host():
    none = init._read_host_files(cfg("none"))
    host = init._read_host_files(cfg("host"))
    assert set(none) == {"hostname", "resolv.conf"}
    assert set(host) == {"hostname", "resolv.conf", "hosts"}
    assert none["hostname"] == os.uname().nodename
