"""The pure parsing/formatting helpers of bench/bench.py (no root, no subprocesses).

bench/ is not a package: the module is loaded from its file path."""

import pytest

from tests.helpers.benchmod import load

bench = load("bench")

STDERR = """\
timing 1000.000 700 main
timing 1006.000 700 fork
timing 1009.500 700 recorded
timing 1009.000 1 child-imported
some other line
timing 1010.000 700 ns-ready
timing 1010.200 1 net-ready
timing 1013.000 1 pivoted
timing 1013.500 1 resolved
timing 1014.000 1 caps
timing 1015.000 700 exec-done
timing 1017.000 700 exited
timing 1019.000 700 torn-down
"""


def test_parse_timing_keeps_text_order_and_ignores_other_lines():
    marks = bench.parse_timing(STDERR)
    assert len(marks) == 12
    assert marks[0] == (1000.0, 700, "main")
    assert marks[3] == (1009.0, 1, "child-imported")
    assert bench.parse_timing("minirt: error\n") == []


@pytest.mark.parametrize("line", ["timing 12.5 7", "timing abc 7 main", "timing 1.0 x main", "timing 1 2 a b"])
def test_parse_timing_rejects_malformed_lines(line):
    with pytest.raises(ValueError):
        bench.parse_timing(line + "\n")


def test_phases_sorts_interleaved_marks_and_names_prev_next():
    ph = bench.phases(bench.parse_timing(STDERR), spawn_ms=985.0, end_ms=1020.5)
    names = list(ph)
    assert names[0] == "spawn→main" and ph["spawn→main"] == pytest.approx(15.0)
    assert ph["main→fork"] == pytest.approx(6.0)
    # the child's mark (1009.0) comes before the parent's "recorded" (1009.5) once sorted by time
    assert names[2:5] == ["fork→child-imported", "child-imported→recorded", "recorded→ns-ready"]
    assert ph["fork→child-imported"] == pytest.approx(3.0)
    assert names[-1] == "torn-down→exit" and ph["torn-down→exit"] == pytest.approx(1.5)
    # consecutive phases tile the whole run
    assert sum(ph.values()) == pytest.approx(1020.5 - 985.0)


def test_phases_without_end_and_with_repeated_steps():
    marks = [(10.0, 1, "a"), (12.0, 1, "b"), (13.0, 1, "a"), (14.0, 1, "b")]
    ph = bench.phases(marks, spawn_ms=9.0)
    assert ph == {"spawn→a": 1.0, "a→b": 2.0, "b→a": 1.0, "a→b#2": 1.0}


def test_offsets_first_occurrence_since_spawn():
    marks = [(12.0, 1, "b"), (10.0, 1, "a"), (13.0, 1, "a")]
    assert bench.offsets(marks, 5.0) == {"a": 5.0, "b": 7.0}


def test_percentile_interpolates_like_numpy():
    xs = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert bench.percentile(xs, 50) == pytest.approx(5.5)
    assert bench.percentile(xs, 10) == pytest.approx(1.9)
    assert bench.percentile(xs, 90) == pytest.approx(9.1)
    assert bench.percentile(xs, 0) == 1 and bench.percentile(xs, 100) == 10
    assert bench.percentile([7.0], 90) == 7.0
    with pytest.raises(ValueError):
        bench.percentile([], 50)
    with pytest.raises(ValueError):
        bench.percentile([1], 101)


def test_summarize():
    s = bench.summarize([30.0, 10.0, 20.0])
    assert s == {"median": 20.0, "p10": 12.0, "p90": 28.0, "min": 10.0, "max": 30.0, "n": 3}
    with pytest.raises(ValueError):
        bench.summarize([])


def test_phase_medians_skips_phases_missing_from_some_run():
    runs = [
        {"spawn→main": 10.0, "main→x": 1.0, "x→y": 2.0},
        {"spawn→main": 12.0, "main→y": 1.5, "y→x": 0.5},
        {"spawn→main": 14.0, "main→x": 3.0, "x→y": 4.0},
    ]
    common, partial = bench.phase_medians(runs)
    assert [name for name, _ in common] == ["spawn→main"]
    assert common[0][1]["median"] == 12.0
    assert partial == {"main→x": 2, "x→y": 2, "main→y": 1, "y→x": 1}


def test_render_table_aligns_columns():
    text = bench.render_table([["a", "1.0"], ["long name", "12.5"]], ["case", "ms"])
    lines = text.splitlines()
    assert lines == [
        "| case      |   ms |",
        "| --------- | ---: |",
        "| a         |  1.0 |",
        "| long name | 12.5 |",
    ]
    assert len({len(line) for line in lines}) == 1


def test_render_table_escapes_pipes_and_checks_shape():
    assert "a\\|b" in bench.render_table([["a|b"]], ["x"])
    with pytest.raises(ValueError):
        bench.render_table([["only one"]], ["x", "y"])
    with pytest.raises(ValueError):
        bench.render_table([], ["x", "y"], align="l")


def test_case_rows_min_max_and_ratio_vs_the_paired_minirt_case():
    results = {bench.NET_NONE: [30.0, 32.0, 34.0], bench.UNSHARE: [3.0, 4.0, 5.0], bench.RUNC: [16.0, 20.0]}
    rows = bench.case_rows(results)
    assert rows[0] == [bench.NET_NONE, "32.0", "30.0", "34.0", "30.4–33.6", 3, "", "", ""]
    assert rows[1] == [bench.UNSHARE, "4.0", "3.0", "5.0", "3.2–4.8", 3, "run --net none", "8.00×", ""]
    assert rows[2][-3:] == ["run --net none", "1.78×", ""]
    # the paired minirt case did not run: no ratio
    assert bench.case_rows({bench.TUTORIAL: [70.0]})[0][-3:] == ["run --net bridge", "n/a", ""]
    # a case without samples is left out (it is reported as skipped instead)
    assert bench.case_rows({bench.CRUN: []}) == []


def test_ratio():
    assert bench.ratio([10.0, 30.0], [5.0]) == "4.00×"
    assert bench.ratio([], [5.0]) == "n/a" and bench.ratio([1.0], None) == "n/a"
    assert bench.ratio([1.0], [0.0]) == "n/a"


def test_skipped_rows_follow_the_measured_ones():
    rows = bench.case_rows({bench.NET_NONE: [30.0]}, skipped={bench.CRUN: "crun 1.8.1: no"})
    assert rows[1] == [bench.CRUN, "skipped", "", "", "", "", "", "", "skipped: crun 1.8.1: no"]
    assert len(rows[1]) == len(bench.CASE_HEADER)


def test_first_error_line():
    err = "\n  cgroups in hybrid mode not supported, drop all controllers from cgroupv2\nmore\n"
    assert bench.first_error_line(err, 1) == "cgroups in hybrid mode not supported, drop all controllers from cgroupv2"
    assert bench.first_error_line("", 3) == "exit status 3, no message"


def test_oci_config_keeps_the_spec_and_sets_process_and_root():
    spec = {"process": {"args": ["sh"], "terminal": True, "rlimits": [{"type": "RLIMIT_NOFILE"}]},
            "root": {"path": "rootfs", "readonly": True},
            "linux": {"namespaces": [{"type": "pid"}, {"type": "network"}]}}
    cfg = bench.oci_config(spec, "/abs/rootfs", ["/bin/true"])
    assert cfg["process"]["args"] == ["/bin/true"] and cfg["process"]["terminal"] is False
    assert cfg["root"] == {"path": "/abs/rootfs", "readonly": True}
    assert cfg["linux"] == spec["linux"] and cfg["process"]["rlimits"] == spec["process"]["rlimits"]
    assert spec["process"]["args"] == ["sh"]  # the input is not modified


def test_parse_peers_and_engine_skip_reasons():
    assert bench.parse_peers(None) == [] and bench.parse_peers("") == []
    assert bench.parse_peers("docker, podman") == ["docker", "podman"]
    with pytest.raises(ValueError):
        bench.parse_peers("docker,lxc")
    none = bench.engine_skip_reasons([])
    assert none == {bench.DOCKER: "set BENCH_PEERS=docker,podman", bench.PODMAN: "set BENCH_PEERS=docker,podman"}
    asked = bench.engine_skip_reasons(["docker"])
    assert bench.DOCKER not in asked  # measured, not skipped
    assert asked[bench.PODMAN] == "set BENCH_PEERS=docker,podman"
    assert bench.engine_skip_reasons(["docker", "podman"]) == {}


def test_batch_rows_total_mean_and_extremes():
    rows = bench.batch_rows({bench.SEQ_RM: [30.0, 40.0, 35.0, 95.0], bench.THROUGHPUT: []})
    assert rows == [[bench.SEQ_RM, 4, "0.20", "50.0", "37.5", "30.0", "95.0"]]
    assert len(rows[0]) == len(bench.BATCH_HEADER)


def test_chart_data_in_table_order_and_marks_minirt():
    results = {bench.NET_NONE: [30.0, 32.0, 40.0], bench.UNSHARE: [3.0], bench.CRUN: []}
    assert bench.chart_data(results) == [
        (bench.NET_NONE, 32.0, 30.0, 40.0, True),
        (bench.UNSHARE, 3.0, 3.0, 3.0, False),
    ]


def test_write_chart_reports_a_missing_matplotlib(monkeypatch, tmp_path):
    import builtins

    real = builtins.__import__

    def no_mpl(name, *a, **kw):
        if name.startswith("matplotlib"):
            raise ImportError("No module named 'matplotlib'")
        return real(name, *a, **kw)

    monkeypatch.setattr(builtins, "__import__", no_mpl)
    msg = bench.write_chart({bench.NET_NONE: [1.0]}, str(tmp_path / "x.png"), "t")
    assert msg == "chart skipped: ImportError: No module named 'matplotlib'"
    assert not (tmp_path / "x.png").exists()


def test_header_line():
    line = bench.header_line("compileall -q run", 2, "Linux 6.1", "0.50 0.40 0.30")
    assert line == ("**compileall -q run** · CPUs: 2 · kernel: Linux 6.1 · "
                    "load average at start (1/5/15 min): 0.50 0.40 0.30")


def test_goal_line():
    assert bench.goal_line(35.0) == "goal: minirt --net none median ≤ 35 ms: met (35.0 ms)"
    assert bench.goal_line(35.04).endswith("missed (35.0 ms)")


def test_render_report_has_both_tables_and_the_goal():
    marks = bench.parse_timing(STDERR)
    runs = [bench.phases(marks, 985.0 - d, 1020.5) for d in (0.0, 1.0, 2.0)]
    ends = bench.offsets(marks, 985.0)
    results = {bench.NET_NONE: [34.0, 35.0, 36.0], bench.UNSHARE: [4.0, 4.0, 4.0]}
    text = bench.render_report({"date": "today", "kernel": "Linux"}, results, runs, ends,
                               {bench.CRUN: "crun 1.8.1: no"}, "**bytecode compiled** · CPUs: 2")
    assert text.splitlines()[2] == "**bytecode compiled** · CPUs: 2"
    assert "skipped: crun 1.8.1: no" in text
    assert "- date: today" in text
    assert "| case " in text and "minirt ÷ case (medians)" in text and "| min ms |" in text
    assert "goal: minirt --net none median ≤ 35 ms: met (35.0 ms)" in text
    assert "## where the time goes" in text
    assert "| spawn→main " in text and "interpreter start + cli import" in text
    assert "parse, config, imports of the runtime" in text
    assert "median ms since spawn of each mark: main 15.0, fork 21.0" in text
    assert "phases not in every run" not in text  # the same order in every run


def test_parse_args(monkeypatch):
    a = bench.parse_args([], environ={})
    assert (a.runs, a.warmups, a.out) == (bench.DEFAULT_RUNS, bench.WARMUPS, bench.RESULTS)
    assert bench.parse_args([], environ={"BENCH_RUNS": "7"}).runs == 7
    assert bench.parse_args(["--runs", "2"], environ={"BENCH_RUNS": "7"}).runs == 2
    q = bench.parse_args(["--runs", "1", "--quick"], environ={})
    assert (q.runs, q.warmups, q.out) == (1, 0, None)
    assert bench.parse_args(["--quick"], environ={}).runs == 3
    with pytest.raises(SystemExit):
        bench.parse_args(["--runs", "0"], environ={})
    with pytest.raises(SystemExit):
        bench.parse_args([], environ={"BENCH_RUNS": "many"})
    assert bench.parse_args([], environ={"BENCH_PEERS": "docker"}).peers == ["docker"]
    assert (a.sequential, a.throughput) == (100, 100) and (q.sequential, q.throughput) == (2, 2)
    assert (a.stats, q.stats) == (bench.DEFAULT_STATS_CONTAINERS, 2)
    assert bench.parse_args(["--quick", "--stats", "5"], environ={}).stats == 5
    with pytest.raises(SystemExit):
        bench.parse_args([], environ={"BENCH_PEERS": "lxd"})


def test_limits_line_ratio_of_the_medians_against_the_goal():
    line = bench.limits_line([30.0, 31.0, 32.0], [33.0, 34.0, 35.0])
    assert line == ("goal: cgroup + limits (--memory 64m --cpus 1 --pids-limit 100) ÷ plain --net none medians "
                    "≤ 1.10: met (1.097: 34.0 ms vs 31.0 ms)")
    assert ": met (1.100: 33.0 ms vs 30.0 ms)" in bench.limits_line([30.0], [33.0])  # the goal itself passes
    assert ": missed (1.103: 33.1 ms vs 30.0 ms)" in bench.limits_line([30.0], [33.1])
    assert bench.limits_line([], [33.0]) is None and bench.limits_line([30.0], None) is None


def test_render_report_has_the_limits_row_and_line():
    results = {bench.NET_NONE: [30.0, 31.0], bench.LIMITS: [32.0, 33.0], bench.UNSHARE: [4.0]}
    text = bench.render_report({}, results, [], {})
    assert f"| {bench.LIMITS} " in text
    assert "÷ plain --net none medians ≤ 1.10: met (1.066: 32.5 ms vs 30.5 ms)" in text
    # the limits row is minirt's own case: no peer ratio, and it stays out of the comparisons
    row = bench.case_rows(results)[1]
    assert row[0] == bench.LIMITS and row[-3:] == ["", "", ""]
    assert "÷ plain" not in bench.render_report({}, {bench.NET_NONE: [30.0]}, [], {})


def test_stats_section_measured_and_skipped():
    text = bench.stats_section(50, [40.0, 50.0, 60.0, 70.0, 200.0])
    assert text.splitlines()[0] == "## minirt stats --no-stream with 50 running containers (--net none, sleep 600)"
    assert "minirt stats --no-stream: median 60.0 ms, p90 148.0 ms, min 40.0, max 200.0 (5 runs)" in text
    assert "goal: stats --no-stream median ≤ 100 ms with 50 containers: met" in text
    assert bench.stats_section(50, [101.0]).endswith("with 50 containers: missed\n")
    why = "`minirt stats --help` exited 125 (not a known command here): minirt: unknown command 'stats'"
    skipped = bench.stats_section(2, None, why)
    assert skipped.splitlines()[2] == f"skipped: {why}" and "goal" not in skipped
    assert "skipped: no timed run" in bench.stats_section(2, [])


MOUNTINFO = """\
22 1 0:21 / /sys rw - sysfs sysfs rw
30 22 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro,mode=755
31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate
32 30 0:28 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,xattr,name=systemd
33 30 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
34 30 0:30 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
35 30 0:31 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
"""
PROC_CGROUP = """\
5:pids:/
4:cpu,cpuacct:/user.slice
3:memory:/process_api/abc
1:name=systemd:/init.scope
0::/init.scope
"""


def test_cgroup_parent_dirs_nest_under_the_own_cgroup_of_each_hierarchy():
    assert bench.cgroup_parent_dirs("minirt-bench-7", MOUNTINFO, PROC_CGROUP) == [
        "/sys/fs/cgroup/unified/init.scope/minirt-bench-7",
        "/sys/fs/cgroup/systemd/init.scope/minirt-bench-7",
        "/sys/fs/cgroup/memory/process_api/abc/minirt-bench-7",
        "/sys/fs/cgroup/cpu,cpuacct/user.slice/minirt-bench-7",  # co-mounted: one directory
        "/sys/fs/cgroup/pids/minirt-bench-7",
    ]
    # a hierarchy this process has no line for (not its own) is left alone
    assert bench.cgroup_parent_dirs("p", MOUNTINFO, "3:memory:/\n") == ["/sys/fs/cgroup/unified/p",
                                                                        "/sys/fs/cgroup/memory/p"]
    for bad in ("/minirt", "a/../b"):
        with pytest.raises(ValueError):
            bench.cgroup_parent_dirs(bad, MOUNTINFO, PROC_CGROUP)


def test_cgroup_error_lines():
    assert bench.cgroup_error_lines([], []) == []
    lines = bench.cgroup_error_lines(["/cg/memory/p/abc"], [("/cg/pids/p", "Device or resource busy")])
    assert lines == [
        "error: container cgroup left behind in the bench's cgroup parent: /cg/memory/p/abc",
        "error: could not remove the bench's cgroup directory /cg/pids/p: Device or resource busy",
    ]


def test_userns_line_ratio_of_the_medians_against_the_goal():
    assert ": met (1.100: 33.0 ms vs 30.0 ms)" in bench.userns_line([30.0], [33.0])
    line = bench.userns_line([30.0, 30.0, 30.0], [34.0, 34.0, 34.0])
    assert line.startswith("goal: --userns-remap default ÷ plain --net none medians ≤ 1.10: missed")
    assert bench.userns_line([], [33.0]) is None and bench.userns_line([30.0], None) is None


def test_bench_config_points_the_subid_files_into_its_own_root(tmp_path):
    import json

    path, parent = bench.setup_cgroup_parent(str(tmp_path))
    cfg = json.load(open(path))
    assert cfg == {"cgroup_parent": parent, "subuid_file": f"{tmp_path}/subuid", "subgid_file": f"{tmp_path}/subgid"}


def test_seccomp_line_ratio_of_the_medians_against_the_goal():
    line = bench.seccomp_line([31.0, 31.5, 32.0], [30.0, 30.5, 31.0])
    assert line.startswith("goal: seccomp default profile (cache warm) ÷ seccomp=unconfined medians ≤ 1.05: met")
    assert "(1.033: 31.5 ms vs 30.5 ms)" in line
    assert ": missed (1.060:" in bench.seccomp_line([31.8], [30.0])
    assert bench.seccomp_line([], [30.0]) is None and bench.seccomp_line([30.0], None) is None


def test_cold_seccomp_line():
    line = bench.cold_seccomp_line([50.0, 52.0, 60.0], [30.0, 31.0])
    assert "median 52.0 ms (min 50.0, max 60.0), +21.5 ms over the warm 30.5 ms" in line and "3 runs" in line
    assert bench.cold_seccomp_line([], [30.0]) is None


def test_render_report_has_the_seccomp_rows_and_keeps_cold_out_of_the_table():
    results = {bench.NET_NONE: [31.0], bench.SECCOMP_OFF: [30.0], bench.COLD_KEY: [50.0]}
    text = bench.render_report({}, results, [], {})
    assert f"| {bench.SECCOMP_OFF} " in text and bench.COLD_KEY not in text
    assert "goal: seccomp default profile" in text and "seccomp cold cache" in text
    assert [d[0] for d in bench.chart_data(results)] == [bench.NET_NONE, bench.SECCOMP_OFF]


def test_image_goal_line():
    """issue 16: run IMAGE (3 layers) within 1.1x of the same root as --rootfs DIR."""
    assert bench.image_line([40.0, 42.0], [43.0, 45.0]) == (
        "goal: run IMAGE (the rootfs + 2 layers) ÷ run --rootfs DIR medians ≤ 1.10: met (1.073: 44.0 ms vs 41.0 ms)")
    assert "missed" in bench.image_line([40.0], [50.0])
    assert bench.image_line([], [1.0]) is None


def test_log_label_plain_numbers_at_1_2_3_5_only():
    assert [bench.log_label(v) for v in (1, 2, 3, 4, 5, 7, 30, 40, 500, 600, 0.5, 0)] == \
        ["1", "2", "3", "", "5", "", "30", "", "500", "", "0.5", ""]


def test_wrap_title_keeps_every_word_in_short_lines():
    title = "minirt start-up vs baselines and peers: 20 runs per case, 2026-12-01T10:55+00:00, 2 CPUs"
    wrapped = bench.wrap_title(title, 40)
    assert all(len(line) <= 40 for line in wrapped.splitlines()) and len(wrapped.splitlines()) == 3
    assert wrapped.replace("\n", " ") == title
