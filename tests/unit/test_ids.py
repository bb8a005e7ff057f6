"""minirt.ids: container ids, short ids, generated and validated names and hostnames."""

import string

import pytest

from minirt import ids
from minirt.errors import ConfigError

HEX = set(string.hexdigits.lower()) - set("ABCDEF")


def test_new_id_is_64_lowercase_hex():
    for _ in range(20):
        cid = ids.new_id()
        assert len(cid) == 64
        assert set(cid) <= HEX


def test_new_id_is_unique():
    assert len({ids.new_id() for _ in range(2000)}) == 2000


def test_short():
    cid = ids.new_id()
    assert ids.short(cid) == cid[:12]
    assert len(ids.short(cid)) == 12


def test_generated_name_known_values():
    assert ids.generated_name("0" * 64) == "brave_bohr_0000"
    # n = 12 -> adjective 12 % 12 = 0, noun 12 // 12 = 1
    assert ids.generated_name("0000000c" + "0" * 56) == "brave_curie_0000"
    # n = 13 -> adjective 1, noun 1
    assert ids.generated_name("0000000dbeef" + "0" * 52) == "calm_curie_0000"
    assert ids.generated_name("ffffffff" + "0" * 56).endswith("_ffff")


def test_generated_name_deterministic_and_valid():
    for _ in range(300):
        cid = ids.new_id()
        name = ids.generated_name(cid)
        assert name == ids.generated_name(cid)
        assert name.endswith("_" + cid[:4])
        assert ids.check_name(name) == name


def test_generated_names_vary():
    assert len({ids.generated_name(ids.new_id()) for _ in range(200)}) > 100


@pytest.mark.parametrize("name", ["ab", "a1", "web", "Web.1-x_y", "0abc", "a" * 200, "a.", "a-", "a_"])
def test_check_name_ok(name):
    assert ids.check_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "a", "_ab", "-ab", ".ab", "a b", " ab", "héllo", "ab\n", "a/b", "a:b", "a@b", "ab\x00", "ａｂ", "٣٣"],
)
def test_check_name_rejects(name):
    with pytest.raises(ConfigError, match="invalid container name"):
        ids.check_name(name)


@pytest.mark.parametrize("name", ["a", "box", "web-1", "web-1.example.com", "123", "A1", "a" * 63])
def test_check_hostname_ok(name):
    assert ids.check_hostname(name) == name


@pytest.mark.parametrize(
    "name", ["", "a" * 64, "-a", "a-", ".a", "a.", "a_b", "a b", "hé", "a/b", "a\n", "١٢", "ab\x00"]
)
def test_check_hostname_rejects(name):
    with pytest.raises(ConfigError, match="invalid hostname"):
        ids.check_hostname(name)
