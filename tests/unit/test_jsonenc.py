"""minirt.jsonenc: byte-for-byte the same as json.dumps(obj, indent=2, sort_keys=True)."""

import json
import math
import random

import pytest

from minirt import jsonenc

STRINGS = [
    "", "plain", "héllo wörld", "snow ☃ clef 𝄞", 'quo"te', "back\\slash", "new\nline", "tab\there",
    "cr\rlf", "nul\x00", "ctl\x01\x1f", "del\x7f", "ls\u2028ps\u2029", "lone \ud800 surrogate", "</script>",
    "emoji 😀", "/slash/",
]  # fmt: skip

CASES = [
    None, True, False, 0, -1, 7, 2**70, -(2**64), 0.0, -0.0, 0.1, 1.5, -2.25, 1e16, 1e-7, 3.0, 1.7976931348623157e308,
    *STRINGS,
    {}, [], (), {"a": {}}, {"a": []}, [[]], [{}], [[], {}],
    {"z": 1, "a": 2, "m": {"y": [1, 2, {"b": None, "a": True}], "x": "s"}},
    {"id": "ab" * 32, "name": "brave_bohr_abab", "status": "created", "pid": 0, "start_time": None,
     "exit_code": None, "owner": {"pid": 123, "start_time": 456789},
     "config": {"argv": ["/bin/sh", "-c", "echo \"hi\"\n"], "env": ["PATH=/bin", "A=é"], "volumes": [
         {"source": "/a", "target": "/b", "readonly": False}], "caps": ["chown", "kill"], "privileged": False,
         "dns": [], "network": None}},
    [1, "two", 3.0, None, [True, False], {"k": "v"}],
    ("tuple", 1, [2]),
    {k: k for k in STRINGS},
    {"B": 1, "a": 2, "_": 3, "A": 4, "é": 5, "": 6},
    {2: "two", 10: "ten", 1: "one"},
]  # fmt: skip


def ref(obj):
    return json.dumps(obj, indent=2, sort_keys=True)


@pytest.mark.parametrize("obj", CASES, ids=range(len(CASES)))
def test_same_as_json_dumps(obj):
    assert jsonenc.dumps(obj) == ref(obj)


ROUND_TRIP = [c for c in CASES if not isinstance(c, tuple) and not (isinstance(c, dict) and 2 in c)]


@pytest.mark.parametrize("obj", ROUND_TRIP, ids=range(len(ROUND_TRIP)))
def test_round_trip(obj):
    assert json.loads(jsonenc.dumps(obj)) == obj


def test_round_trip_int_keys_become_strings():
    assert json.loads(jsonenc.dumps({2: "two", 10: "ten"})) == {"2": "two", "10": "ten"}


def _random_value(rng: random.Random, depth: int):
    kind = rng.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.randrange(-(2**40), 2**40)
    if kind == 3:
        return rng.choice([rng.random() * 10 ** rng.randrange(-20, 20), float(rng.randrange(100)), -rng.random()])
    if kind in (4, 5):
        return "".join(rng.choice("ab\"\\\n\t\x00\x1fé☃𝄞 ") for _ in range(rng.randrange(8)))
    if kind in (6, 7):
        return {
            "".join(rng.choice("abcAB_é\n\"") for _ in range(rng.randrange(1, 5))): _random_value(rng, depth + 1)
            for _ in range(rng.randrange(5))
        }
    return [_random_value(rng, depth + 1) for _ in range(rng.randrange(5))]


def test_random_documents_same_as_json_dumps():
    rng = random.Random(20240611)
    for _ in range(300):
        obj = {"root": _random_value(rng, 0), "list": [_random_value(rng, 1) for _ in range(3)]}
        assert jsonenc.dumps(obj) == ref(obj)
        assert json.loads(jsonenc.dumps(obj)) == obj


@pytest.mark.parametrize("s", [{3, 1, 2}, frozenset({"b", "a", "c"})])
def test_sets_are_sorted_lists(s):
    assert jsonenc.dumps({"caps": s}) == ref({"caps": sorted(s)})
    assert json.loads(jsonenc.dumps(s)) == sorted(s)


def test_empty_set():
    assert jsonenc.dumps(set()) == "[]"
    assert jsonenc.dumps({"x": frozenset()}) == ref({"x": []})


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_raise(bad):
    with pytest.raises(ValueError, match="cannot encode"):
        jsonenc.dumps(bad)
    with pytest.raises(ValueError):
        jsonenc.dumps({"a": [1, {"b": bad}]})


@pytest.mark.parametrize("bad", [object(), b"bytes", 1j, Ellipsis, bytearray(b"x")])
def test_unsupported_type_raises(bad):
    with pytest.raises(TypeError, match="cannot encode"):
        jsonenc.dumps(bad)
    with pytest.raises(TypeError):
        jsonenc.dumps({"ok": 1, "nested": [bad]})


def test_bool_is_not_encoded_as_int():
    assert jsonenc.dumps([True, False, 1, 0]) == ref([True, False, 1, 0])
    assert "true" in jsonenc.dumps({"a": True})


@pytest.mark.parametrize("obj", CASES, ids=range(len(CASES)))
def test_unsorted_indent_4_same_as_json_dumps(obj):
    """`inspect`'s text: json.dumps(obj, indent=4), keys in the document's order."""
    assert jsonenc.dumps(obj, sort_keys=False, step="    ") == json.dumps(obj, indent=4)


def test_inspect_document_prints_as_json_dumps_indent_4():
    from minirt.commands import inspect

    rec = next(c for c in CASES if isinstance(c, dict) and "config" in c)
    rec = dict(rec, network={"address": "10.0.0.2", "prefixlen": 24, "gateway": "10.0.0.1", "mac": "02:42:0a:00:00:02",
                             "bridge": "minirt0", "host_ifname": "mrab", "network": "minirt"},
               config=dict(rec["config"], ports=[{"host_ip": "0.0.0.0", "host_port": 8080, "container_port": 80,
                                                  "proto": "tcp"}], resources={"memory": 64 << 20, "cpus": 1.5}))
    docs = [inspect.document(rec, "running"), inspect.document(rec, "exited")]
    assert jsonenc.dumps(docs, sort_keys=False, step="    ") == json.dumps(docs, indent=4)
