"""Pure pieces of the lifecycle: restart policy, the log writer, doctor's rule reading, references."""

import json
import os

import pytest

from minirt import doctor
from minirt.errors import ConfigError, NoSuchObject
from minirt.net import subnets
from minirt.process.logfile import LogWriter
from minirt.process.supervisor import parse_restart, should_restart
from minirt.state import Store


def test_parse_restart():
    assert parse_restart(None) == ("no", 0)
    assert parse_restart("on-failure") == ("on-failure", 0)
    assert parse_restart("on-failure:3") == ("on-failure", 3)
    assert parse_restart("always") == ("always", 0)
    for bad in ("sometimes", "always:2", "on-failure:x"):
        with pytest.raises(ConfigError):
            parse_restart(bad)


@pytest.mark.parametrize("policy, code, done, stopped, want", [
    ("no", 1, 0, False, False),
    ("on-failure:2", 1, 0, False, True),
    ("on-failure:2", 1, 2, False, False),
    ("on-failure:2", 0, 0, False, False),
    ("on-failure", 1, 99, False, True),
    ("always", 0, 5, False, True),
    ("always", 1, 0, True, False),
])  # fmt: skip
def test_should_restart(policy, code, done, stopped, want):
    assert should_restart(policy, code, done, stopped) is want


def test_log_writer_lines_streams_and_partial(tmp_path):
    w = LogWriter(str(tmp_path))
    w.write("stdout", b"one\ntw")
    w.write("stderr", b"err\n")
    w.write("stdout", b"o\n")
    w.write("stdout", b"tail without newline")
    w.close()
    recs = [json.loads(line) for line in open(tmp_path / "container.log")]
    assert [(r["stream"], r["log"]) for r in recs] == [
        ("stdout", "one\n"), ("stderr", "err\n"), ("stdout", "two\n"), ("stdout", "tail without newline")]
    assert all(r["time"].endswith("Z") and "T" in r["time"] for r in recs)


def test_doctor_finds_foreign_drop_policies_only():
    ruleset = [
        {"chain": {"family": "ip", "table": "filter", "name": "FORWARD", "hook": "forward", "policy": "drop"}},
        {"chain": {"family": "inet", "table": "minirt", "name": "forward", "hook": "forward", "policy": "drop"}},
        {"chain": {"family": "inet", "table": "fw", "name": "in", "hook": "input", "policy": "drop"}},
        {"chain": {"family": "inet", "table": "fw", "name": "regular"}},
        {"table": {"family": "ip", "name": "filter"}},
    ]
    assert doctor._foreign_drop_chains(ruleset) == [("ip", "filter", "FORWARD", "forward", "drop")]


def test_subnet_contains():
    assert subnets.contains("10.0.0.0/24", "10.0.0.9")
    assert not subnets.contains("10.0.0.0/24", "10.0.1.9")
    assert not subnets.contains("10.0.0.0/24", "nope")


def test_resolve_references(tmp_path):
    s = Store(str(tmp_path))
    a, b = "ab" + "0" * 62, "ac" + "1" * 62
    for cid, name in ((a, "alpha"), (b, "beta")):
        s.make_dirs(cid)
        s.register({"id": cid, "name": name, "status": "created"})
    assert s.resolve("alpha") == a and s.resolve(b[:12]) == b and s.resolve(a) == a
    with pytest.raises(NoSuchObject, match="ambiguous"):
        s.resolve("a")
    with pytest.raises(NoSuchObject, match="no such container: zz"):
        s.resolve("zz")
    assert os.path.exists(f"{s.container_dir(a)}/owner")
