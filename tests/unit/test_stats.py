"""`minirt stats` and `minirt update` without root: Docker's formulas and formats against fake
cgroupfs trees (v1 and v2 layouts), fake /proc files and fake veth counters."""

import pytest

from minirt import cgroups
from minirt.cgroups import stats as st
from minirt.commands import update

GiB = 1024**3
V1_UNLIMITED = 9223372036854771712  # what memory.limit_in_bytes reads with no limit (LONG_MAX in pages)


def write_tree(base, files: dict[str, str]) -> None:
    for rel, text in files.items():
        p = base / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


@pytest.fixture
def v1(tmp_path):
    """A hybrid host's v1 hierarchies: one directory per controller, as layout.container_dirs makes."""
    dirs = {c: str(tmp_path / c / "minirt" / "abc") for c in ("memory", "cpuacct", "pids", "blkio", "cpu")}
    write_tree(tmp_path, {
        "cpuacct/minirt/abc/cpuacct.usage": "2500000000\n",
        "memory/minirt/abc/memory.usage_in_bytes": "3145728\n",
        "memory/minirt/abc/memory.stat": "cache 1048576\ninactive_file 4096\ntotal_inactive_file 1048576\n",
        "memory/minirt/abc/memory.limit_in_bytes": "67108864\n",
        "blkio/minirt/abc/blkio.throttle.io_service_bytes":
            "8:0 Read 12288\n8:0 Write 4096000\n8:0 Sync 0\n8:0 Total 4108288\n"
            "8:16 Read 1000\n8:16 Write 0\nTotal 4109288\n",
        "pids/minirt/abc/pids.current": "3\n",
    })  # fmt: skip
    return cgroups.driver({"version": 1, "dirs": dirs}), tmp_path


@pytest.fixture
def v2(tmp_path):
    d = tmp_path / "minirt" / "abc"
    write_tree(d, {
        "cpu.stat": "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n",
        "memory.current": "10485760\n",
        "memory.stat": "anon 8388608\nfile 2097152\ninactive_file 2097152\n",
        "memory.max": "max\n",
        "io.stat": "8:0 rbytes=1000 wbytes=2000 rios=1 wios=2 dbytes=0 dios=0\n8:16 rbytes=24 wbytes=0\n",
        "pids.current": "7\n",
    })  # fmt: skip
    return cgroups.driver({"version": 2, "dirs": {"": str(d)}, "root": str(tmp_path)}), d


def test_v1_driver_stats(v1):
    drv, _ = v1
    assert drv.stats() == {"cpu_ns": 2_500_000_000, "mem_usage": 3145728 - 1048576, "mem_limit": 67108864,
                           "blk_read": 13288, "blk_write": 4096000, "pids": 3}  # fmt: skip
    assert drv.cpu_ns() == 2_500_000_000


def test_v2_driver_stats(v2):
    drv, _ = v2
    assert drv.stats() == {"cpu_ns": 1_500_000_000, "mem_usage": 8388608, "mem_limit": -1,
                           "blk_read": 1024, "blk_write": 2000, "pids": 7}  # fmt: skip
    assert drv.cpu_ns() == 1_500_000_000


def test_system_cpu_is_seven_fields_in_ns_and_counts_cpus(tmp_path):
    p = tmp_path / "stat"
    p.write_text("cpu  100 1 50 800 10 2 3 7 0 0\ncpu0 50 0 25 400 5 1 2 3 0 0\ncpu1 50 1 25 400 5 1 1 4 0 0\n"
                 "intr 12345\nctxt 99\n")  # fmt: skip
    # steal (7) and guest are left out, as moby's readSystemCPUUsage does; USER_HZ ticks of 10 ms
    assert st.system_cpu(str(p)) == ((100 + 1 + 50 + 800 + 10 + 2 + 3) * 10_000_000, 2)


def test_system_cpu_of_this_host():
    total, online = st.system_cpu()
    assert total > 0 and online >= 1


@pytest.mark.parametrize("cpu, system, online, want", [
    (50_000_000, 100_000_000, 2, 100.0),  # one of two cores busy for the whole interval
    (25_000_000, 100_000_000, 4, 100.0),
    (10_000_000, 400_000_000, 4, 10.0),
    (0, 100_000_000, 2, 0.0),
    (10, 0, 2, 0.0),  # no system delta (first sample): Docker shows 0, not a division error
    (-5, 100, 2, 0.0),  # a counter that went back (cgroup recreated by a restart)
])  # fmt: skip
def test_cpu_percent_is_dockers_formula(cpu, system, online, want):
    assert st.cpu_percent(cpu, system, online) == pytest.approx(want)


@pytest.mark.parametrize("limit, want", [(64 * 1024**2, 64 * 1024**2), (V1_UNLIMITED, 8 * GiB), (-1, 8 * GiB),
                                         (0, 8 * GiB), (16 * GiB, 8 * GiB)])  # fmt: skip
def test_memory_limit_falls_back_to_the_hosts_memory(limit, want):
    assert st.mem_limit(limit, 8 * GiB) == want


def test_mem_total(tmp_path):
    p = tmp_path / "meminfo"
    p.write_text("MemTotal:        8153372 kB\nMemFree:          123 kB\n")
    assert st.mem_total(str(p)) == 8153372 * 1024
    assert st.mem_total() > 0


# /proc/net/dev with its columns' padding shortened (the parser splits on whitespace)
NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes packets errs drop fifo frame compressed multicast|bytes packets errs drop fifo colls carrier compressed
    lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0
mrabc: 1500 20 0 0 0 0 0 0 250000 180 0 0 0 0 0 0
  mrdef:    500 5 0 0 0 0 0 0    750000 500 0 0 0 0 0 0
"""


def test_net_io_is_the_host_veths_counters_swapped(tmp_path):
    p = tmp_path / "dev"
    p.write_text(NET_DEV)
    counters = st.net_counters(str(p))
    assert counters == {"lo": (100, 100), "mrabc": (1500, 250000), "mrdef": (500, 750000)}
    rec = {"network": {"host_ifname": "mrabc"}, "connected": [{"host_ifname": "mrdef"}, {"host_ifname": "gone"}]}
    names = st.ifnames(rec)
    assert names == ["mrabc", "mrdef", "gone"]
    # the container received what the host ends sent, and sent what they received; a gone veth is 0
    assert st.net_io(names, counters) == (1_000_000, 2000)


def test_net_counters_of_this_host():
    assert "lo" in st.net_counters()


def test_no_veth_for_none_or_host():
    assert st.ifnames({"network": {}}) == [] and st.ifnames({}) == []
    assert st.net_io([], {"lo": (1, 1)}) == (0, 0)


# What follows formats numbers with limits.format_bytes and format_decimal_bytes (docker's units).


def entry_v1(v1) -> st.Entry:
    drv, _ = v1
    e = st.Entry("web", "3f2a9c1e0d4f" + "0" * 52, "web")
    return e.fill(drv.stats(), 12.3456, 8 * GiB, (1_230_000, 648))


def test_fields_v1_against_dockers_strings(v1):
    assert st.fields(entry_v1(v1)) == {
        "Container": "web", "ID": "3f2a9c1e0d4f", "Name": "web", "CPUPerc": "12.35%",
        "MemUsage": "2MiB / 64MiB", "MemPerc": "3.12%", "NetIO": "1.23MB / 648B",
        "BlockIO": "13.3kB / 4.1MB", "PIDs": "3",
    }  # fmt: skip
    assert st.fields(entry_v1(v1), trunc=False)["ID"] == "3f2a9c1e0d4f" + "0" * 52


def test_fields_v2_unlimited_shows_the_hosts_memory(v2):
    drv, _ = v2
    e = st.Entry("abc", "a" * 64, "abc").fill(drv.stats(), 0.0, 8 * GiB, (0, 0))
    f = st.fields(e)
    assert (f["CPUPerc"], f["MemUsage"], f["MemPerc"]) == ("0.00%", "8MiB / 8GiB", "0.10%")
    assert (f["NetIO"], f["BlockIO"], f["PIDs"]) == ("0B / 0B", "1.02kB / 2kB", "7")


def test_stopped_container_rows():
    zero = st.fields(st.Entry("old", "b" * 64, "old"))  # --no-stream: the daemon's empty sample
    assert [zero[k] for k in st.KEYS] == ["bbbbbbbbbbbb", "old", "0.00%", "0B / 0B", "0.00%", "0B / 0B", "0B / 0B",
                                          "0"]  # fmt: skip
    gone = st.fields(st.Entry("old", "b" * 64, "old", invalid=True))  # streaming: no data
    assert [gone[k] for k in st.KEYS[2:]] == ["--", "-- / --", "--", "--", "--", "--"]


def test_table_golden(v1):
    rows = [st.fields(entry_v1(v1)), st.fields(st.Entry("c" * 12, "c" * 64, "quiet_turing"))]
    assert st.table(rows) == (
        "CONTAINER ID   NAME           CPU %     MEM USAGE / LIMIT   MEM %     NET I/O         BLOCK I/O        PIDS\n"
        "3f2a9c1e0d4f   web            12.35%    2MiB / 64MiB        3.12%     1.23MB / 648B   13.3kB / 4.1MB   3\n"
        "cccccccccccc   quiet_turing   0.00%     0B / 0B             0.00%     0B / 0B         0B / 0B          0\n"
    )


def test_table_of_nothing_is_the_header():
    want = "CONTAINER ID   NAME      CPU %     MEM USAGE / LIMIT   MEM %     NET I/O   BLOCK I/O   PIDS\n"
    assert st.table([]) == want


def test_json_line_golden(v1):
    assert st.json_line(st.fields(entry_v1(v1))) == (
        '{"BlockIO":"13.3kB / 4.1MB","CPUPerc":"12.35%","Container":"web","ID":"3f2a9c1e0d4f",'
        '"MemPerc":"3.12%","MemUsage":"2MiB / 64MiB","Name":"web","NetIO":"1.23MB / 648B","PIDs":"3"}\n'
    )


def test_json_line_is_json(v1):
    import json

    assert json.loads(st.json_line(st.fields(entry_v1(v1))))["MemUsage"] == "2MiB / 64MiB"


# update: which files, in which order


class R:
    """A stand-in with limits.Resources' write methods (the write lists are limits.py's to test)."""

    def __init__(self, v1):
        self.w = v1

    def v1_writes(self):
        return self.w

    def v2_writes(self):
        return [w[1:] for w in self.w]


def test_update_writes_what_is_named_or_changes():
    cur = R([("memory", update.MEM, "67108864"), ("memory", update.MEMSW, "134217728"), ("pids", "pids.max", "100")])
    upd = R([("pids", "pids.max", "100")])
    new = R([("memory", update.MEM, "67108864"), ("memory", update.MEMSW, "134217728"), ("pids", "pids.max", "100")])
    assert update.changed_writes(cur, upd, new, 1) == [("pids", "pids.max", "100")]
    new2 = R([("memory", update.MEM, "100663296"), ("memory", update.MEMSW, "134217728")])
    upd2 = R([("memory", update.MEM, "100663296")])
    assert update.changed_writes(cur, upd2, new2, 1) == [("memory", update.MEM, "100663296")]
    assert update.changed_writes(cur, upd2, new2, 2) == [(update.MEM, "100663296")]


@pytest.mark.parametrize("current, mem, swap, first", [
    (64 << 20, 256 << 20, 512 << 20, update.MEMSW),  # raising both: swap first, or memory > memsw
    (256 << 20, 64 << 20, 128 << 20, update.MEM),  # lowering both: memory first, or memsw < memory
    (64 << 20, 128 << 20, -1, update.MEMSW),  # unlimited swap: first
])  # fmt: skip
def test_v1_memory_and_swap_order_is_runcs(current, mem, swap, first):
    writes = [("memory", update.MEM, str(mem)), ("pids", "pids.max", "9"), ("memory", update.MEMSW, str(swap))]
    got = update.order_v1_memory(writes, current)
    assert got[0][1] == first and {w[1] for w in got[:2]} == {update.MEM, update.MEMSW}
    assert got[2] == ("pids", "pids.max", "9")


def test_v1_write_refused_is_undone_and_ebusy_explained(v1, monkeypatch):
    drv, _ = v1
    mem = drv.dirs["memory"]
    with open(f"{mem}/memory.max_usage_in_bytes", "w") as f:
        f.write("4194304\n")
    with open(f"{drv.dirs['pids']}/pids.max", "w") as f:
        f.write("max\n")
    real = drv.apply

    def apply(writes):
        if writes[0][1] == update.MEM:
            import errno

            raise OSError(errno.EBUSY, "Device or resource busy", f"{mem}/{update.MEM}")
        real(writes)

    monkeypatch.setattr(drv, "apply", apply)
    from minirt.errors import ConflictError

    with pytest.raises(ConflictError) as e:
        update._write(drv, [("pids", "pids.max", "50"), ("memory", update.MEM, "1048576")], "web")
    assert str(e.value) == ("cannot update container web: unable to set memory limit to 1048576 "
                            "(current usage: 3145728, peak usage: 4194304)")  # fmt: skip
    assert drv.read("pids", "pids.max") == "max"  # the pids write before it was put back


def test_update_without_flags_is_dockers_error():
    from minirt.errors import ConfigError

    with pytest.raises(ConfigError, match="^you must provide one or more flags when using this command$"):
        update.main(["web"])
