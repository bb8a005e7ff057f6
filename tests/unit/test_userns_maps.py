"""minirt.userns: map parsing and validation, subuid/subgid parsing, free-range allocation and
the `minirt` entry made on first use (temp files only)."""

import pytest

from minirt import userns
from minirt.errors import ConfigError


def test_parse_map():
    assert userns.parse_map("0:100000:65536") == [0, 100000, 65536]
    for bad in ("0:100000", "a:1:2", "0:1:2:3", "", "0:-1:5", "0:1:0", "0:4294967290:10"):
        with pytest.raises(ConfigError):
            userns.parse_map(bad)


def test_check_maps_overlaps_and_root():
    ok = [[0, 100000, 1000], [1000, 300000, 1000]]
    assert userns.check_maps(ok) == ok
    with pytest.raises(ConfigError, match="container ranges overlap"):
        userns.check_maps([[0, 100000, 1000], [999, 300000, 10]])
    with pytest.raises(ConfigError, match="host ranges overlap"):
        userns.check_maps([[0, 100000, 1000], [5000, 100500, 10]])
    with pytest.raises(ConfigError, match="id 0 must be mapped"):
        userns.check_maps([[1, 100000, 1000]])
    with pytest.raises(ConfigError, match="at most 340"):
        userns.check_maps([[i, 100000 + i, 1] for i in range(341)])
    # adjacent ranges do not overlap
    assert userns.check_maps([[0, 100000, 10], [10, 100010, 10]])


def test_map_text_and_to_host():
    m = [[0, 100000, 1000], [1000, 300000, 5]]
    assert userns.map_text(m) == "0 100000 1000\n1000 300000 5\n"
    assert userns.to_host(m, 0) == 100000
    assert userns.to_host(m, 1002) == 300002
    assert userns.to_host(m, 5000) == 65534


def test_parse_subid_skips_junk():
    text = "# comment\nalice:100000:65536\n\nbroken\nbob:x:1\ncarol:200000:0\ndave:300000:10\n"
    assert userns.parse_subid(text) == [("alice", 100000, 65536), ("dave", 300000, 10)]


@pytest.mark.parametrize("taken, start", [
    ([], 100000),
    ([("a", 100000, 65536)], 165536),
    ([("a", 0, 100000)], 100000),  # ends where ours starts
    ([("a", 150000, 1)], 165536),
    ([("a", 100000, 65536), ("b", 200000, 65536)], 296608),
    ([("b", 200000, 65536), ("a", 100000, 65536)], 296608),  # order of the file does not matter
    ([("a", 90000, 500000), ("b", 120000, 5)], 624288),  # a range inside another
    ([("a", 100000, 65536), ("b", 300000, 65536)], 165536),  # a gap that fits
])  # fmt: skip
def test_free_start(taken, start):
    assert userns.free_start(taken) == start


def test_free_start_exhausted():
    with pytest.raises(ConfigError, match="no free"):
        userns.free_start([("a", 100000, (1 << 32) - 100001)])


def _files(tmp_path, uid="", gid=""):
    (tmp_path / "subuid").write_text(uid)
    (tmp_path / "subgid").write_text(gid)
    return {"subuid_file": str(tmp_path / "subuid"), "subgid_file": str(tmp_path / "subgid")}


def test_remap_default_creates_once_at_a_start_free_in_both(tmp_path):
    cfg = _files(tmp_path, "a:100000:65536", "b:165536:65536\n")
    u, g = userns.remap("default", cfg)
    assert u == g == [[0, 231072, 65536]]
    assert (tmp_path / "subuid").read_text() == "a:100000:65536\nminirt:231072:65536\n"
    assert (tmp_path / "subgid").read_text() == "b:165536:65536\nminirt:231072:65536\n"
    assert userns.remap("default", cfg) == (u, g)
    assert (tmp_path / "subuid").read_text().count("minirt") == 1


def test_remap_missing_files_are_created(tmp_path):
    cfg = {"subuid_file": str(tmp_path / "u"), "subgid_file": str(tmp_path / "g")}
    assert userns.remap("default", cfg) == ([[0, 100000, 65536]], [[0, 100000, 65536]])
    assert (tmp_path / "g").read_text() == "minirt:100000:65536\n"


def test_remap_named_user_is_read_not_created(tmp_path):
    cfg = _files(tmp_path, "app:200000:1000\napp:500000:10\n", "app:300000:1010\n")
    assert userns.remap("app", cfg) == ([[0, 200000, 1000], [1000, 500000, 10]], [[0, 300000, 1010]])
    with pytest.raises(ConfigError, match="no entry for 'nobody'"):
        userns.remap("nobody", cfg)
    assert "minirt" not in (tmp_path / "subuid").read_text()


def test_remap_half_entry_is_refused(tmp_path):
    cfg = _files(tmp_path, "minirt:100000:65536\n", "")
    with pytest.raises(ConfigError, match="only one of"):
        userns.remap("default", cfg)
