"""Pure logic of `minirt run`: option parsing, capabilities, config, ids, JSON, errors."""

import json
import os
import signal

import pytest

from minirt import caps, ids, jsonenc
from minirt.cliparse import FLAG, LIST, VALUE, Option, parse
from minirt.config import ContainerConfig, Tmpfs, Volume, container_env, parse_env
from minirt.errors import ConfigError, exit_code_of

OPTS = [
    Option(("--rm",), FLAG, ""),
    Option(("-i",), FLAG, ""),
    Option(("-t",), FLAG, ""),
    Option(("-e", "--env"), LIST, ""),
    Option(("--name",), VALUE, ""),
]


class TestCliparse:
    def test_values_flags_lists(self):
        o, cmd = parse(OPTS, ["--rm", "--name", "a", "-e", "A=1", "-eB=2", "--env=C=3", "-it", "sh", "-c", "x"])
        assert o == {"rm": True, "i": True, "t": True, "env": ["A=1", "B=2", "C=3"], "name": "a"}
        assert cmd == ["sh", "-c", "x"]

    def test_double_dash_and_first_operand_end_options(self):
        assert parse(OPTS, ["--", "--rm"])[1] == ["--rm"]
        o, cmd = parse(OPTS, ["ls", "--rm", "-e", "x"])
        assert o["rm"] is False and cmd == ["ls", "--rm", "-e", "x"]

    def test_flag_with_false(self):
        assert parse(OPTS, ["--rm=false"])[0]["rm"] is False

    @pytest.mark.parametrize("args, msg", [
        (["--nope"], "unknown flag: --nope"), (["-x"], "unknown shorthand flag"),
        (["--name"], "flag needs an argument: --name"), (["-e"], "flag needs an argument: -e"),
    ])  # fmt: skip
    def test_errors(self, args, msg):
        with pytest.raises(ConfigError, match=msg):
            parse(OPTS, args)


class TestCaps:
    def test_docker_default_mask(self):
        assert caps.mask(caps.DOCKER_DEFAULT) == 0xA80425FB

    def test_add_drop_spellings(self):
        all_caps = frozenset(caps.CAPS)
        got = caps.resolve(["NET_ADMIN", "cap_sys_time"], ["Chown"], False, all_caps)
        assert got == (caps.DOCKER_DEFAULT | {"net_admin", "sys_time"}) - {"chown"}

    def test_all(self):
        sup = frozenset(caps.CAPS[:10])
        assert caps.resolve(["ALL"], [], False, sup) == sup
        assert caps.resolve([], ["all"], False, sup) == frozenset()
        assert caps.resolve(["kill"], ["ALL"], False, sup) == {"kill"}
        assert caps.resolve([], [], True, sup) == sup

    def test_unknown_and_unsupported(self):
        with pytest.raises(ConfigError, match="unknown capability"):
            caps.resolve(["bogus"], [], False, frozenset(caps.CAPS))
        with pytest.raises(ConfigError, match="SYS_ADMIN: not available"):
            caps.resolve(["sys_admin"], [], False, caps.DOCKER_DEFAULT)

    def test_supported_here_is_within_the_kernel_list(self):
        assert caps.supported_here() <= set(caps.CAPS)


class TestConfig:
    def test_volume_parse(self):
        v = Volume.parse("/a/b/:/data:ro")
        assert (v.source, v.target, v.readonly) == ("/a/b", "/data", True)
        assert Volume.parse("/a:/b").readonly is False
        for bad in ("/a", "rel:/b", "/a:rel", "/a:/b:rx", ":/b"):
            with pytest.raises(ConfigError):
                Volume.parse(bad)

    def test_tmpfs_parse(self):
        t = Tmpfs.parse("/run:size=1m")
        assert (t.target, t.options) == ("/run", "size=1m")
        with pytest.raises(ConfigError):
            Tmpfs.parse("run")

    def test_env(self):
        assert parse_env(["A=1", "HOME", "NOPE"], {"HOME": "/h"}) == ["A=1", "HOME=/h"]
        env = container_env(["PATH=/x", "B=2"], "h", tty=True, term="vt100")
        assert env == ["PATH=/x", "HOSTNAME=h", "HOME=/root", "TERM=vt100", "B=2"]
        assert "TERM" not in " ".join(container_env([], "h", tty=False, term="vt100"))

    def _cfg(self, tmp_path, **kw):
        base = dict(rootfs=str(tmp_path), argv=["sh"], volumes=[], tmpfs=[], net="none", workdir="/", dns=[])
        return ContainerConfig(**{**base, **kw})

    def test_validate(self, tmp_path):
        self._cfg(tmp_path).validate()
        cases = [
            (dict(rootfs=str(tmp_path / "nope")), "no such directory"),
            (dict(net="weird"), "unknown mode"),
            (dict(argv=[]), "no command"),
            (dict(workdir="rel"), "absolute"),
            (dict(volumes=[Volume("/no/such", "/d", False)]), "does not exist"),
            (dict(dns=["1.2.3.4"]), "--dns needs a bridge network"),
        ]
        for kw, msg in cases:
            with pytest.raises(ConfigError, match=msg):
                self._cfg(tmp_path, **kw).validate()
        odd = tmp_path / "a:b"
        odd.mkdir()
        with pytest.raises(ConfigError, match="may not contain"):
            self._cfg(tmp_path, rootfs=str(odd)).validate()


class TestIds:
    def test_ids_and_names(self):
        a, b = ids.new_id(), ids.new_id()
        assert len(a) == 64 and int(a, 16) >= 0 and a != b
        assert ids.short(a) == a[:12]
        assert ids.check_name(ids.generated_name(a)) == ids.generated_name(a)
        for bad in ("x", "_ab", "-ab", "a b", "héllo"):
            with pytest.raises(ConfigError):
                ids.check_name(bad)
        assert ids.check_hostname("box-1.lan") == "box-1.lan"
        for bad in ("-a", "a_b", "x" * 64, ""):
            with pytest.raises(ConfigError):
                ids.check_hostname(bad)


class TestJsonenc:
    RECORD = {
        "id": "abc", "n": 3, "f": 1.5, "t": True, "no": False, "none": None, "empty": {}, "list": [],
        "s": 'quote " backslash \\ newline \n tab \t ctrl \x01 unicode é €',
        "nested": {"b": [1, {"c": "d"}], "a": []},
    }  # fmt: skip

    def test_same_as_json(self):
        assert jsonenc.dumps(self.RECORD) == json.dumps(self.RECORD, indent=2, sort_keys=True)
        assert json.loads(jsonenc.dumps(self.RECORD)) == self.RECORD

    def test_sets_and_errors(self):
        assert json.loads(jsonenc.dumps({"s": {"b", "a"}})) == {"s": ["a", "b"]}
        with pytest.raises(ValueError):
            jsonenc.dumps(float("nan"))
        with pytest.raises(TypeError):
            jsonenc.dumps(object())


def _status_of(action) -> int:
    pid = os.fork()
    if pid == 0:
        action()
        os._exit(0)
    return os.waitpid(pid, 0)[1]


def test_exit_code_of():
    assert exit_code_of(_status_of(lambda: os._exit(3))) == 3
    assert exit_code_of(_status_of(lambda: os.kill(os.getpid(), signal.SIGKILL))) == 137
    assert exit_code_of(_status_of(lambda: os.kill(os.getpid(), signal.SIGTERM))) == 143
