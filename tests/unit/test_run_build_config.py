"""minirt.commands.run.build_config: the command line -> ContainerConfig (no container is started)."""

import os

import pytest

from minirt import caps, explain, ids
from minirt.commands import run
from minirt.commands.run import build_config
from minirt.config import DEFAULT_PATH
from minirt.errors import ConfigError


@pytest.fixture(autouse=True)
def rootfs(tmp_path, monkeypatch):
    d = tmp_path / "rootfs"
    d.mkdir()
    monkeypatch.setenv("MINIRT_ROOTFS", str(d))
    monkeypatch.setattr(explain, "enabled", False)  # build_config sets it from --explain
    return str(d)


def test_defaults(rootfs):
    cfg = build_config([])
    assert len(cfg.id) == 64
    assert cfg.name == ids.generated_name(cfg.id)
    assert cfg.hostname == ids.short(cfg.id)
    assert cfg.rootfs == rootfs
    assert cfg.argv == ["/bin/sh"]
    assert cfg.workdir == "/"
    assert cfg.volumes == [] and cfg.tmpfs == [] and cfg.dns == []
    assert cfg.cap_add == [] and cfg.cap_drop == []
    assert cfg.privileged is False and cfg.rm is False and cfg.init is False
    assert cfg.no_new_privs is True
    assert cfg.caps == caps.DOCKER_DEFAULT
    assert cfg.env[:3] == [f"PATH={DEFAULT_PATH}", f"HOSTNAME={cfg.hostname}", "HOME=/root"]
    cfg.validate()


def test_default_network_is_the_bridge():
    from minirt.net.network import DEFAULT_NETWORK

    cfg = build_config([])
    assert (cfg.net, cfg.network) == ("bridge", DEFAULT_NETWORK)
    assert build_config(["--net", "bridge"]).network == DEFAULT_NETWORK
    assert build_config(["--net", DEFAULT_NETWORK]).network == DEFAULT_NETWORK


def test_named_network():
    cfg = build_config(["--network", "backend"])
    assert (cfg.net, cfg.network) == ("bridge", "backend")


def test_net_none():
    cfg = build_config(["--net", "none", "--", "echo", "hi"])
    assert (cfg.net, cfg.network) == ("none", None)
    assert cfg.hostname == ids.short(cfg.id)
    assert cfg.argv == ["echo", "hi"]
    cfg.validate()


def test_net_host_uses_the_host_name():
    cfg = build_config(["--net=host"])
    assert (cfg.net, cfg.network) == ("host", None)
    assert cfg.hostname == os.uname().nodename


def test_ids_are_fresh_per_call():
    assert build_config([]).id != build_config([]).id


def test_command_after_options_keeps_its_dashes():
    cfg = build_config(["--rm", "-e", "A=1", "--", "sh", "-c", "echo --rm", "--name", "x"])
    assert cfg.argv == ["sh", "-c", "echo --rm", "--name", "x"]
    assert cfg.rm is True
    assert cfg.name != "x"


def test_double_dash():
    assert build_config(["--", "--weird", "-e"]).argv == ["--weird", "-e"]


def test_name():
    assert build_config(["--name", "web.1"]).name == "web.1"


@pytest.mark.parametrize("name", ["_web", "-web", "w", "a b", "wéb"])
def test_bad_name(name):
    with pytest.raises(ConfigError, match="invalid container name"):
        build_config(["--name", name])


def test_hostname():
    cfg = build_config(["--hostname", "box.local", "--net", "none"])
    assert cfg.hostname == "box.local"
    assert "HOSTNAME=box.local" in cfg.env
    assert build_config(["-h", "h2", "--net", "host"]).hostname == "h2"


@pytest.mark.parametrize("hostname", ["-box", "bad_name", "a" * 64])
def test_bad_hostname(hostname):
    with pytest.raises(ConfigError, match="invalid hostname"):
        build_config(["--hostname", hostname])


def test_env(monkeypatch):
    monkeypatch.setenv("MINIRT_TEST_COPY", "copied")
    monkeypatch.delenv("MINIRT_TEST_UNSET", raising=False)
    cfg = build_config(["-e", "A=1", "-eMINIRT_TEST_COPY", "--env", "MINIRT_TEST_UNSET", "-e", "PATH=/bin"])
    assert "A=1" in cfg.env
    assert "MINIRT_TEST_COPY=copied" in cfg.env
    assert not any(e.startswith("MINIRT_TEST_UNSET") for e in cfg.env)
    assert cfg.env[0] == "PATH=/bin"


def test_volumes_tmpfs_workdir(tmp_path):
    cfg = build_config(["-v", f"{tmp_path}:/data:ro", "--volume", "/a/:/b", "--tmpfs", "/run:size=1m", "-w", "/srv"])
    assert [v.to_dict() for v in cfg.volumes] == [
        {"source": str(tmp_path), "target": "/data", "readonly": True},
        {"source": "/a", "target": "/b", "readonly": False},
    ]
    assert [t.to_dict() for t in cfg.tmpfs] == [{"target": "/run", "options": "size=1m"}]
    assert cfg.workdir == "/srv"


def test_bad_volume():
    with pytest.raises(ConfigError, match="host path must be absolute"):
        build_config(["-v", "data:/data"])


def test_dns():
    assert build_config(["--dns", "1.1.1.1", "--dns=9.9.9.9"]).dns == ["1.1.1.1", "9.9.9.9"]


@pytest.mark.parametrize("addr", ["1.1.1", "1.1.1.256", "a.b.c.d", "::1", "1.1.1.1.1", ""])
def test_bad_dns(addr):
    with pytest.raises(ConfigError, match="not an IPv4 address"):
        build_config(["--dns", addr])


def test_caps_add_and_drop():
    cfg = build_config(["--cap-add", "NET_ADMIN", "--cap-drop", "cap_chown"])
    assert cfg.caps == (caps.DOCKER_DEFAULT | {"net_admin"}) - {"chown"}
    assert cfg.cap_add == ["NET_ADMIN"]
    assert cfg.cap_drop == ["cap_chown"]


def test_privileged_gets_everything_available():
    assert build_config(["--privileged"]).caps == caps.supported_here()


def test_unknown_cap():
    with pytest.raises(ConfigError, match="unknown capability"):
        build_config(["--cap-add", "NOT_A_CAP"])


def test_unknown_flag():
    with pytest.raises(ConfigError, match="unknown flag: --bogus"):
        build_config(["--bogus"])


def test_explain_flag():
    build_config(["--explain"])
    assert explain.enabled is True
    build_config([])
    assert explain.enabled is False


def test_help(capsys):
    with pytest.raises(SystemExit) as ei:
        build_config(["--help"])
    assert ei.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: minirt run [OPTIONS] IMAGE [COMMAND [ARG...]]\n"
                          "       minirt run [OPTIONS] [-- COMMAND")
    assert "--cap-add CAP" in out


def test_relative_rootfs_is_made_absolute(tmp_path, monkeypatch):
    (tmp_path / "rel").mkdir()
    monkeypatch.chdir(tmp_path)
    assert build_config(["--rootfs", "rel"]).rootfs == f"{tmp_path}/rel"


def test_missing_default_rootfs(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIRT_ROOTFS", str(tmp_path / "absent"))
    with pytest.raises(ConfigError, match="no such directory"):
        build_config([])


def test_explicit_rootfs_is_checked_by_validate_not_build(tmp_path):
    cfg = build_config(["--rootfs", str(tmp_path / "absent")])
    with pytest.raises(ConfigError, match="no such directory"):
        cfg.validate()


def test_default_rootfs_from_environment(rootfs):
    assert run.default_rootfs() == rootfs


def test_default_rootfs_under_the_install_prefix(monkeypatch):
    import minirt

    monkeypatch.delenv("MINIRT_ROOTFS")
    monkeypatch.setattr(minirt, "__file__", "/opt/venv/lib/python3.12/site-packages/minirt/__init__.py")
    assert run.default_rootfs() == "/opt/venv/share/minirt/rootfs"


def test_cgroup_parent_is_stored_only_when_given_as_docker_shows_it(tmp_path, monkeypatch):
    # Docker: HostConfig.CgroupParent is "" unless --cgroup-parent was given (the daemon's own
    # --cgroup-parent, or /docker, applies then); `make compare` row "inspect HostConfig.CgroupParent"
    from minirt.commands.inspect import _resources

    conf = tmp_path / "config.json"
    conf.write_text('{"cgroup_parent": "/site"}')
    monkeypatch.setenv("MINIRT_CONFIG", str(conf))
    cfg = build_config([])
    assert cfg.cgroup_parent is None
    assert _resources(cfg.to_dict())["CgroupParent"] == ""
    cfg = build_config(["--cgroup-parent", "/mine"])
    assert cfg.cgroup_parent == "/mine"
    assert _resources(cfg.to_dict())["CgroupParent"] == "/mine"


def test_a_bad_configured_cgroup_parent_is_refused_before_anything_is_made(tmp_path, monkeypatch):
    conf = tmp_path / "config.json"
    conf.write_text('{"cgroup_parent": "a/../b"}')
    monkeypatch.setenv("MINIRT_CONFIG", str(conf))
    with pytest.raises(ConfigError, match="invalid cgroup parent"):
        build_config([])


def test_security_options_defaults():
    cfg = build_config([])
    assert cfg.user is None and cfg.group_add == [] and cfg.read_only is False
    assert cfg.sysctls == {} and cfg.ulimits == [] and cfg.devices == []


def test_security_options_parsed():
    cfg = build_config(["-u", "app:staff", "--group-add", "audio", "--read-only", "--sysctl", "kernel.sem=1 2 3 4",
                        "--ulimit", "nofile=10:20", "--device", "/dev/null:/dev/n:rw", "--", "true"])  # fmt: skip
    assert cfg.user == "app:staff" and cfg.group_add == ["audio"] and cfg.read_only is True
    assert cfg.sysctls == {"kernel.sem": "1 2 3 4"}
    assert cfg.ulimits == [{"name": "nofile", "soft": 10, "hard": 20}]
    (d,) = cfg.devices
    assert (d["path_in_container"], d["type"], d["major"], d["minor"], d["permissions"]) == ("/dev/n", "c", 1, 3, "rw")
    # --user leaves HOME to the passwd entry unless -e sets it
    assert not any(e.startswith("HOME=") for e in cfg.env)
    assert "HOME=/h" in build_config(["-u", "app", "-e", "HOME=/h"]).env
    again = type(cfg).from_dict(cfg.to_dict())
    assert again.devices == cfg.devices and again.sysctls == cfg.sysctls and again.user == cfg.user


def test_security_options_refused_early():
    with pytest.raises(ConfigError, match="is not whitelisted"):
        build_config(["--sysctl", "vm.swappiness=1"])
    with pytest.raises(ConfigError, match="not allowed in host network namespace"):
        build_config(["--net", "host", "--sysctl", "net.core.somaxconn=1"])
    with pytest.raises(ConfigError, match="invalid ulimit type: x"):
        build_config(["--ulimit", "x=1"])


def test_a_first_operand_before_dashdash_is_an_image(tmp_path, monkeypatch):
    """Docker's syntax: `run IMAGE CMD`; the store is asked (and, here, has no such image)."""
    monkeypatch.setenv("MINIRT_STORE", str(tmp_path / "store"))
    from minirt.errors import NoSuchObject

    with pytest.raises(NoSuchObject, match="Unable to find image 'nosuch:1' locally"):
        build_config(["--rm", "nosuch:1", "echo", "hi"])
    with pytest.raises(ConfigError, match="conflicting options: --rootfs and an IMAGE"):
        build_config(["--rootfs", str(tmp_path), "nosuch:1"])


def test_run_with_dashdash_never_imports_the_image_code():
    """Start-up speed: the image package loads only for `run IMAGE`."""
    import subprocess
    import sys

    code = ("import os, sys; os.environ['MINIRT_ROOTFS'] = '/'; from minirt.commands.run import build_config; "
            "build_config(['--net', 'none', '--', 'true']); "
            "print(any(m.startswith('minirt.image') for m in sys.modules))")
    # from / (not the checkout): the installed package, with its compiled _syscalls
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/").stdout
    assert out.strip() == "False"
