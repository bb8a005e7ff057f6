"""minirt.caps: Docker's default set and --cap-add/--cap-drop/--privileged resolution."""

import pytest

from minirt import caps
from minirt.caps import CAP_NUMBER, CAPS, DOCKER_DEFAULT, mask, parse_name, resolve
from minirt.errors import ConfigError

ALL = frozenset(CAPS)


def test_docker_default_mask():
    # /proc/<pid>/status CapEff of a default `docker run` container.
    assert mask(DOCKER_DEFAULT) == 0xA80425FB


def test_capability_numbers_match_the_kernel():
    # include/uapi/linux/capability.h
    assert len(CAPS) == 41
    assert CAP_NUMBER["chown"] == 0
    assert CAP_NUMBER["kill"] == 5
    assert CAP_NUMBER["net_admin"] == 12
    assert CAP_NUMBER["sys_admin"] == 21
    assert CAP_NUMBER["mknod"] == 27
    assert CAP_NUMBER["setfcap"] == 31
    assert CAP_NUMBER["mac_override"] == 32
    assert CAP_NUMBER["audit_read"] == 37
    assert CAP_NUMBER["checkpoint_restore"] == 40


def test_mask():
    assert mask(frozenset()) == 0
    assert mask(frozenset({"chown", "sys_admin"})) == 1 | 1 << 21
    assert mask(ALL) == (1 << 41) - 1


@pytest.mark.parametrize(
    "name, want",
    [("NET_ADMIN", "net_admin"), ("net_admin", "net_admin"), ("CAP_NET_ADMIN", "net_admin"),
     ("cap_net_admin", "net_admin"), ("Cap_Sys_Time", "sys_time"), (" kill ", "kill"),
     ("ALL", "all"), ("all", "all")],
)  # fmt: skip
def test_parse_name(name, want):
    assert parse_name(name) == want


@pytest.mark.parametrize("name", ["", "net-admin", "CAP_", "bogus", "CAP_BOGUS", "netadmin"])
def test_parse_name_unknown(name):
    with pytest.raises(ConfigError, match="unknown capability"):
        parse_name(name)


def test_resolve_default():
    assert resolve([], [], False, ALL) == DOCKER_DEFAULT
    assert isinstance(resolve([], [], False, ALL), frozenset)


def test_resolve_add_and_drop_any_spelling():
    got = resolve(["NET_ADMIN", "cap_sys_time", "Cap_Sys_Nice"], ["CAP_CHOWN", "kill", "Net_Raw"], False, ALL)
    assert got == (DOCKER_DEFAULT | {"net_admin", "sys_time", "sys_nice"}) - {"chown", "kill", "net_raw"}


def test_resolve_add_wins_over_drop_of_the_same_cap():
    # moby TweakCapabilities: drop from the basics first, then append the adds.
    assert "net_admin" in resolve(["net_admin"], ["net_admin"], False, ALL)
    assert "chown" in resolve(["chown"], ["chown"], False, ALL)


def test_resolve_add_all():
    assert resolve(["ALL"], [], False, ALL) == ALL


def test_resolve_add_all_gives_only_the_supported_set():
    supported = DOCKER_DEFAULT | {"net_admin"}
    assert resolve(["all"], [], False, supported) == supported


def test_resolve_add_all_minus_drops():
    assert resolve(["ALL"], ["SYS_ADMIN", "cap_mknod"], False, ALL) == ALL - {"sys_admin", "mknod"}


def test_resolve_drop_all():
    assert resolve([], ["ALL"], False, ALL) == frozenset()


def test_resolve_drop_all_then_add():
    assert resolve(["chown", "NET_BIND_SERVICE"], ["all"], False, ALL) == {"chown", "net_bind_service"}


def test_resolve_add_all_and_drop_all_like_docker():
    # moby TweakCapabilities checks "add ALL" before "drop ALL": everything but the named drops.
    assert resolve(["ALL"], ["ALL"], False, ALL) == ALL
    assert resolve(["ALL"], ["ALL", "chown"], False, ALL) == ALL - {"chown"}


def test_privileged_returns_exactly_supported():
    supported = frozenset({"chown", "sys_admin", "bpf"})
    assert resolve([], [], True, supported) == supported
    assert resolve(["net_admin"], ["ALL"], True, supported) == supported
    assert resolve([], [], True, ALL) == ALL


@pytest.mark.parametrize("add, drop", [(["NET_BOGUS"], []), ([], ["nope"]), (["chown", "x"], [])])
def test_resolve_unknown_name(add, drop):
    with pytest.raises(ConfigError, match="unknown capability"):
        resolve(add, drop, False, ALL)


def test_resolve_unsupported_add():
    with pytest.raises(ConfigError, match="capability NET_ADMIN: not available"):
        resolve(["net_admin"], [], False, DOCKER_DEFAULT)


def test_resolve_unsupported_default_cap():
    supported = DOCKER_DEFAULT - {"audit_write"}
    with pytest.raises(ConfigError, match="capability AUDIT_WRITE: not available"):
        resolve([], [], False, supported)
    # dropping the missing one makes it fine
    assert resolve([], ["audit_write"], False, supported) == supported


def test_supported_here_matches_our_bounding_set():
    with open("/proc/sys/kernel/cap_last_cap") as f:
        last = int(f.read())
    with open("/proc/self/status") as f:
        bnd = next(int(line.split()[1], 16) for line in f if line.startswith("CapBnd:"))
    assert mask(caps.supported_here()) == bnd & ((1 << (min(last, len(CAPS) - 1) + 1)) - 1)
