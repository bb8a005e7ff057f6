"""minirt.config: -v/--tmpfs/-e parsing, the container environment, ContainerConfig.validate."""

import os

import pytest

from minirt import jsonenc
from minirt.config import (
    DEFAULT_PATH,
    NET_MODES,
    ContainerConfig,
    Tmpfs,
    Volume,
    container_env,
    parse_env,
)
from minirt.errors import ConfigError

# ---- Volume ---------------------------------------------------------------------------------


def test_volume_rw_by_default():
    v = Volume.parse("/host/data:/data")
    assert (v.source, v.target, v.readonly) == ("/host/data", "/data", False)


def test_volume_modes():
    assert Volume.parse("/a:/b:ro").readonly is True
    assert Volume.parse("/a:/b:rw").readonly is False


def test_volume_paths_are_normalized():
    v = Volume.parse("/a/./b/../c/:/x//y/")
    assert (v.source, v.target) == ("/a/c", "/x/y")


def test_volume_leading_double_slash_is_one_slash():
    # os.path.normpath keeps a leading "//"; Go's path.Clean (Docker) does not
    assert Volume.parse("/a://x/../y").target == "/y"


@pytest.mark.parametrize("target", ["/", "//", "/etc/../..", "/..", "/./", "///x/.."])
def test_volume_destination_root_is_refused(target):
    # Docker: invalid mount config for type "bind": invalid specification: destination can't be '/'
    with pytest.raises(ConfigError) as ei:
        Volume.parse(f"/src:{target}")
    assert str(ei.value) == f"volume '/src:{target}': destination can't be '/'"


def test_volume_to_dict():
    assert Volume.parse("/a:/b:ro").to_dict() == {"source": "/a", "target": "/b", "readonly": True}


@pytest.mark.parametrize(
    "spec, why",
    [
        ("data:/data", "host path must be absolute"),
        ("./data:/data", "host path must be absolute"),
        ("/data:data", "container path must be absolute"),
        ("/a:/b:rx", "unknown mode 'rx'"),
        ("/a:/b:RO", "unknown mode"),
        ("/a:/b:", "unknown mode ''"),
        ("/a", "expected HOST:CONTAINER"),
        ("", "expected HOST:CONTAINER"),
        (":/b", "expected HOST:CONTAINER"),
        ("/a:", "expected HOST:CONTAINER"),
        ("/a:/b:ro:x", "expected HOST:CONTAINER"),
    ],
)
def test_volume_bad(spec, why):
    with pytest.raises(ConfigError, match=why):
        Volume.parse(spec)


# ---- Tmpfs ----------------------------------------------------------------------------------


def test_tmpfs_without_options():
    t = Tmpfs.parse("/run")
    assert (t.target, t.options) == ("/run", "")


def test_tmpfs_with_options():
    t = Tmpfs.parse("/run/x/:size=64m,mode=1777")
    assert (t.target, t.options) == ("/run/x", "size=64m,mode=1777")
    assert t.to_dict() == {"target": "/run/x", "options": "size=64m,mode=1777"}


@pytest.mark.parametrize("spec", ["/", "//", "/run/..", "/run/../..:size=1m"])
def test_tmpfs_destination_root_is_refused(spec):
    # Docker refuses `--tmpfs /` and `--tmpfs //` alike (moby #30166)
    with pytest.raises(ConfigError) as ei:
        Tmpfs.parse(spec)
    assert str(ei.value) == f"tmpfs {spec!r}: destination can't be '/'"


@pytest.mark.parametrize("spec", ["run", "", ":size=1m", "run:size=1m"])
def test_tmpfs_bad(spec):
    with pytest.raises(ConfigError, match="container path must be absolute"):
        Tmpfs.parse(spec)


# ---- environment ----------------------------------------------------------------------------


def test_parse_env_name_value_kept_verbatim():
    assert parse_env(["A=1", "B=x=y", "C="], {}) == ["A=1", "B=x=y", "C="]


def test_parse_env_name_copied_from_host():
    assert parse_env(["HOME", "A=1", "LANG"], {"HOME": "/h", "LANG": "C.UTF-8"}) == ["HOME=/h", "A=1", "LANG=C.UTF-8"]


def test_parse_env_host_value_may_be_empty():
    assert parse_env(["E"], {"E": ""}) == ["E="]


def test_parse_env_unset_name_dropped():
    assert parse_env(["NOPE", "A=1"], {"OTHER": "x"}) == ["A=1"]


def test_parse_env_empty_name():
    with pytest.raises(ConfigError, match="empty variable name"):
        parse_env(["=x"], {})
    with pytest.raises(ConfigError, match="empty variable name"):
        parse_env([""], {})


def test_container_env_defaults_without_tty():
    assert container_env([], "box", False, "screen") == [f"PATH={DEFAULT_PATH}", "HOSTNAME=box", "HOME=/root"]


def test_container_env_term_only_with_tty():
    assert container_env([], "box", True, "screen")[-1] == "TERM=screen"
    assert container_env([], "box", True, None)[-1] == "TERM=xterm"
    assert not any(e.startswith("TERM=") for e in container_env([], "box", False, None))


def test_default_path_is_dockers():
    assert DEFAULT_PATH == "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def test_container_env_overrides_and_additions():
    env = container_env(["PATH=/bin", "HOME=/home/u", "A=1", "TERM=dumb", "E="], "box", True, "xterm")
    assert env == ["PATH=/bin", "HOSTNAME=box", "HOME=/home/u", "TERM=dumb", "A=1", "E="]


def test_container_env_last_user_value_wins():
    env = container_env(["A=1", "A=2"], "h", False, None)
    assert env.count("A=2") == 1
    assert "A=1" not in env


# ---- ContainerConfig ------------------------------------------------------------------------


def make_cfg(tmp_path, **over):
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir(exist_ok=True)
    kw = dict(
        id="a" * 64, name="box", rootfs=str(rootfs), argv=["/bin/sh"], env=[], workdir="/", hostname="box",
        volumes=[], tmpfs=[], net="none", dns=[], caps=frozenset({"kill", "chown"}),
    )  # fmt: skip
    kw.update(over)
    return ContainerConfig(**kw)


def test_config_unknown_field():
    with pytest.raises(TypeError, match="unknown config fields: \\['bogus'\\]"):
        ContainerConfig(bogus=1)


def test_config_missing_fields_are_none():
    cfg = ContainerConfig(net="host")
    assert cfg.net == "host"
    assert cfg.rootfs is None and cfg.dns is None


def test_validate_ok(tmp_path):
    (tmp_path / "vol").mkdir()
    cfg = make_cfg(tmp_path, volumes=[Volume.parse(f"{tmp_path}/vol:/v")], tmpfs=[Tmpfs.parse("/t")])
    cfg.validate()  # no exception


@pytest.mark.parametrize("net", NET_MODES)
def test_validate_known_net_modes(tmp_path, net):
    make_cfg(tmp_path, net=net).validate()


def test_validate_missing_rootfs(tmp_path):
    cfg = make_cfg(tmp_path, rootfs=str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="no such directory"):
        cfg.validate()


def test_validate_rootfs_is_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="no such directory"):
        make_cfg(tmp_path, rootfs=str(tmp_path / "file")).validate()


@pytest.mark.parametrize("bad", [":", ",", "\\"])
def test_validate_rootfs_with_overlay_separators(tmp_path, bad):
    d = tmp_path / f"root{bad}fs"
    d.mkdir()  # exists, so only the character can be the reason
    with pytest.raises(ConfigError, match="may not contain"):
        make_cfg(tmp_path, rootfs=str(d)).validate()


def test_validate_missing_volume_host_path(tmp_path):
    cfg = make_cfg(tmp_path, volumes=[Volume.parse(f"{tmp_path}/absent:/data")])
    with pytest.raises(ConfigError, match=f"host path {tmp_path}/absent does not exist"):
        cfg.validate()


def test_validate_volume_host_path_may_be_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    make_cfg(tmp_path, volumes=[Volume.parse(f"{tmp_path}/f:/f:ro")]).validate()


@pytest.mark.parametrize("net", ["bridge0", "", None, "NONE"])
def test_validate_unknown_net_mode(tmp_path, net):
    with pytest.raises(ConfigError, match="unknown mode"):
        make_cfg(tmp_path, net=net).validate()


@pytest.mark.parametrize("net", ["none", "host"])
def test_validate_dns_needs_bridge(tmp_path, net):
    with pytest.raises(ConfigError, match="--dns needs a bridge network"):
        make_cfg(tmp_path, net=net, dns=["1.1.1.1"]).validate()
    make_cfg(tmp_path, net="bridge", dns=["1.1.1.1"]).validate()


@pytest.mark.parametrize("argv", [[], None])
def test_validate_empty_argv(tmp_path, argv):
    with pytest.raises(ConfigError, match="no command given"):
        make_cfg(tmp_path, argv=argv).validate()


@pytest.mark.parametrize("workdir", ["tmp", "./x", ""])
def test_validate_relative_workdir(tmp_path, workdir):
    with pytest.raises(ConfigError, match="must be an absolute path"):
        make_cfg(tmp_path, workdir=workdir).validate()


def test_validate_changes_nothing_on_the_host(tmp_path):
    cfg = make_cfg(tmp_path, volumes=[Volume.parse(f"{tmp_path}/absent:/data")])
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(ConfigError):
        cfg.validate()
    assert sorted(os.listdir(tmp_path)) == before


def test_to_dict(tmp_path):
    cfg = make_cfg(tmp_path, volumes=[Volume.parse("/a:/b:ro")], tmpfs=[Tmpfs.parse("/t:size=1m")])
    d = cfg.to_dict()
    assert set(d) == set(ContainerConfig.__slots__)
    assert d["volumes"] == [{"source": "/a", "target": "/b", "readonly": True}]
    assert d["tmpfs"] == [{"target": "/t", "options": "size=1m"}]
    assert d["caps"] == ["chown", "kill"]
    jsonenc.dumps(d)  # a state record: must be encodable
