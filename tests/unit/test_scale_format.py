"""The pure helpers of bench/scale.py (no root, no subprocesses); loaded from its file path."""

from tests.helpers.benchmod import load

scale = load("scale")


def test_spread_sample_takes_all_when_few_and_spreads_when_many():
    assert scale.spread_sample(3, 50) == [0, 1, 2]
    assert scale.spread_sample(0, 50) == []
    s = scale.spread_sample(999, 50)
    assert len(s) == 50 and s[0] == 0 and s[-1] == 998 and s == sorted(set(s))


def test_count_nft_elements_counts_sets_and_maps_only():
    ruleset = {"nftables": [{"metainfo": {}}, {"table": {"name": "minirt"}},
                            {"set": {"name": "a", "elem": ["10.0.0.1", "10.0.0.2"]}},
                            {"map": {"name": "m", "elem": [[1, 2]]}}, {"set": {"name": "empty"}},
                            {"rule": {"expr": []}}]}
    assert scale.count_nft_elements(ruleset) == 3


def test_parse_smaps_rollup():
    text = "55d0-7ffe ---p 00000000 00:00 0 [rollup]\nRss:  2048 kB\nPss:   512 kB\nPss_Anon: 100 kB\n"
    assert scale.parse_smaps_rollup(text) == {"Rss": 2048, "Pss": 512, "Pss_Anon": 100}


def _m(**kw):
    m = {"count": 10, "runs": 1, "started": 10, "errors": [], "start_total_s": 1.0, "start_ms": [10.0] * 10,
         "start": {"p50": 10.0, "p90": 12.0, "p99": 40.0, "min": 9.0, "max": 41.0},
         "commands": {"ps": {"argv": "minirt ps", "median": 100.0, "min": 90.0, "max": 110.0, "lines": 11},
                      "inspect": {"argv": "minirt inspect s5", "median": 45.0, "min": 44.0, "max": 46.0,
                                  "lines": 90}},
         "rm_s": 2.0, "meta": {"date": "d"}}
    m.update(kw)
    return m


def test_goal_lines_met_and_missed():
    lines = scale.goal_lines(_m())
    assert "goal: ps median ≤ 150 ms at 10 containers: met (100.0 ms)" in lines
    assert "goal: inspect of one median ≤ 40 ms at 10 containers: missed (45.0 ms)" in lines
    assert "goal: start p99 ≤ 3 × p50: missed (p50 10.0 ms, p99 40.0 ms: 4.00×)" in lines
    assert "goal: rm -f of all ≤ 60 s: met (2.0 s for 10)" in lines
    assert "goal: no error: met (none)" in lines
    assert "goal: no error: missed (1 error(s))" in scale.goal_lines(_m(errors=["x"]))


def test_render_has_every_section():
    text = scale.render(_m(stopped_early="MemAvailable low"))
    for head in ("## start", "## reachability", "## commands at 10", "## memory and kernel objects",
                 "## rm -f of all", "## goals", "**stopped early**: MemAvailable low"):
        assert head in text, head


def test_deciles():
    d = scale.deciles([float(i) for i in range(20)])
    assert d[0] == (0, 1, 0.5) and d[-1] == (18, 19, 18.5) and len(d) == 10
    assert scale.deciles([1.0] * 9) == []
