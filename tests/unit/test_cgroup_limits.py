"""minirt.cgroups.limits: Docker's resource flags, their messages, and the cgroup files they become."""

import subprocess
import sys

import pytest

from minirt.cgroups.limits import (
    FLAGS, Resources, format_bytes, format_decimal_bytes, parse_bytes, parse_cpus, parse_cpuset,
    shares_to_weight,
)
from minirt.errors import ConfigError

MiB = 1 << 20
GiB = 1 << 30


def parse(online_cpus="0-1", online_mems="0", update=False, **opts):
    return Resources.parse(opts, online_cpus, online_mems, update=update)


def err(fn, *a, **kw) -> str:
    with pytest.raises(ConfigError) as info:
        fn(*a, **kw)
    return str(info.value)


# --- units -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text,n", [
    ("64m", 64 * MiB), ("64M", 64 * MiB), ("64mb", 64 * MiB), ("64MiB", 64 * MiB), ("64 m", 64 * MiB),
    ("1.5g", 3 * GiB // 2), ("100", 100), ("100b", 100), ("100B", 100), ("1k", 1024), ("1K", 1024),
    ("2t", 2 << 40), ("1p", 1 << 50), ("0", 0), ("1.5", 1), ("6291456", 6291456),
])
def test_parse_bytes_go_units_ram_in_bytes(text, n):
    assert parse_bytes(text, "-m, --memory") == n


@pytest.mark.parametrize("text", ["3x", "-1", "", "1.", ".5m", "64  m", "1e3", "64mm", " 64m", "６４m"])
def test_parse_bytes_invalid_size(text):
    assert err(parse_bytes, text, "-m, --memory") == \
        f'invalid argument "{text}" for "-m, --memory" flag: invalid size: \'{text}\''


def test_parse_bytes_exact_docker_text_and_parsefloat_error():
    assert err(parse_bytes, "3x", "-m, --memory") == \
        "invalid argument \"3x\" for \"-m, --memory\" flag: invalid size: '3x'"
    # the regexp admits "1.2.3"; strconv.ParseFloat is what refuses it
    assert err(parse_bytes, "1.2.3m", "--memory-swap") == \
        'invalid argument "1.2.3m" for "--memory-swap" flag: strconv.ParseFloat: parsing "1.2.3": invalid syntax'


@pytest.mark.parametrize("text,nano", [
    ("0.5", 500_000_000), ("1", 1_000_000_000), ("1.5", 1_500_000_000), ("1/4", 250_000_000),
    ("1.5e0", 1_500_000_000), ("15e-1", 1_500_000_000), (".5", 500_000_000), ("0.01", 10_000_000),
    ("0", 0), ("0.000000001", 1),
])
def test_parse_cpus(text, nano):
    assert parse_cpus(text) == nano


def test_parse_cpus_errors():
    assert err(parse_cpus, "x") == 'invalid argument "x" for "--cpus" flag: failed to parse x as a rational number'
    assert err(parse_cpus, "1/0") == \
        'invalid argument "1/0" for "--cpus" flag: failed to parse 1/0 as a rational number'
    assert err(parse_cpus, "0.0000000001") == 'invalid argument "0.0000000001" for "--cpus" flag: value is too precise'


def test_parse_cpuset():
    assert parse_cpuset("0-2,4") == {0, 1, 2, 4}
    assert parse_cpuset("3,2,1") == {1, 2, 3}
    assert parse_cpuset("0-0,0,1-3") == {0, 1, 2, 3}
    assert parse_cpuset("") == set()
    for bad in ("1-x", "1-", "-1", "2-1", "1,,2", " 1", "a"):
        assert err(parse_cpuset, bad) == f"Invalid value {bad} for cpuset cpus: invalid format: {bad}"
    assert err(parse_cpuset, "1-x", "mems") == "Invalid value 1-x for cpuset mems: invalid format: 1-x"
    assert err(parse_cpuset, "0-9000") == \
        "Invalid value 0-9000 for cpuset cpus: value of out range, maximum is 8192"


@pytest.mark.parametrize("n,text", [
    (0, "0B"), (1, "1B"), (1023, "1023B"), (1024, "1KiB"), (1536 * 1024, "1.5MiB"), (64 * MiB, "64MiB"),
    (8346034421, "7.773GiB"), (1 << 40, "1TiB"), (int(1.25 * 1024 ** 4), "1.25TiB"), (123456, "120.6KiB"),
])
def test_format_bytes_go_units_bytes_size(n, text):
    assert format_bytes(n) == text


@pytest.mark.parametrize("n,text", [
    (0, "0B"), (999, "999B"), (1000, "1kB"), (1234, "1.23kB"), (12_345_678, "12.3MB"), (5_000_000_000, "5GB"),
    (999_999, "1e+03kB"),  # Go's %.3g does the same
])
def test_format_decimal_bytes_human_size_precision_3(n, text):
    assert format_decimal_bytes(n) == text


# --- parse: values and Docker's messages -------------------------------------------------------

def test_flags_and_empty_parse():
    assert FLAGS == ("memory", "memory_swap", "memory_reservation", "cpus", "cpu_shares",
                     "cpuset_cpus", "cpuset_mems", "pids_limit", "oom_score_adj")
    r = Resources.parse({})
    assert not r.any()
    assert r == Resources()
    assert not Resources.parse({k: None for k in FLAGS}).any()
    assert not Resources.parse({"detach": True, "name": "x"}).any()  # other CLI dests are ignored


def test_parse_typical():
    r = parse(memory="256m", memory_swap="1g", memory_reservation="128m", cpus="1.5", cpu_shares="512",
              cpuset_cpus="0-1", cpuset_mems="0", pids_limit="100", oom_score_adj="-500")
    assert r.to_dict() == {
        "memory": 256 * MiB, "memory_swap": GiB, "memory_reservation": 128 * MiB, "nano_cpus": 1_500_000_000,
        "cpu_shares": 512, "cpuset_cpus": "0-1", "cpuset_mems": "0", "pids_limit": 100, "oom_score_adj": -500,
    }


def test_parse_zero_means_unset_as_in_docker():
    r = parse(memory="0", memory_swap="0", memory_reservation="0", cpus="0", cpu_shares="0", cpuset_cpus="")
    assert not r.any()


def test_pids_limit_unlimited_and_errors():
    assert parse(pids_limit="0").pids_limit == -1
    assert parse(pids_limit="-1").pids_limit == -1
    assert parse(pids_limit="-5").pids_limit == -1
    assert parse(pids_limit="0x10").pids_limit == 16  # pflag int64: strconv.ParseInt(s, 0, 64)
    assert parse(pids_limit="010").pids_limit == 8
    assert err(parse, pids_limit="x") == \
        'invalid argument "x" for "--pids-limit" flag: strconv.ParseInt: parsing "x": invalid syntax'
    assert err(parse, pids_limit="1.5") == \
        'invalid argument "1.5" for "--pids-limit" flag: strconv.ParseInt: parsing "1.5": invalid syntax'
    assert err(parse, pids_limit=" 5") == \
        'invalid argument " 5" for "--pids-limit" flag: strconv.ParseInt: parsing " 5": invalid syntax'
    assert err(parse, pids_limit="9223372036854775808") == (
        'invalid argument "9223372036854775808" for "--pids-limit" flag: '
        'strconv.ParseInt: parsing "9223372036854775808": value out of range')


def test_memory_messages():
    assert err(parse, memory="5m") == "Minimum memory limit allowed is 6MB"
    assert parse(memory="6m").memory == 6 * MiB
    assert err(parse, memory_swap="1g") == \
        "You should always set the Memory limit when using Memoryswap limit, see usage"
    assert parse(memory_swap="-1").memory_swap == -1  # -1 without --memory is fine for Docker
    assert err(parse, memory="512m", memory_swap="256m") == \
        "Minimum memoryswap limit should be larger than memory limit, see usage"
    assert parse(memory="512m", memory_swap="512m").memory_swap == 512 * MiB
    assert err(parse, memory="64m", memory_reservation="128m") == \
        "Minimum memory limit can not be less than memory reservation limit, see usage"
    assert err(parse, memory_reservation="1m") == "Minimum memory reservation allowed is 6MB"
    assert err(parse, memory="-1") == 'invalid argument "-1" for "-m, --memory" flag: invalid size: \'-1\''
    assert err(parse, memory_swap="-2") == \
        'invalid argument "-2" for "--memory-swap" flag: invalid size: \'-2\''
    assert err(parse, memory_reservation="x") == \
        'invalid argument "x" for "--memory-reservation" flag: invalid size: \'x\''


def test_cpus_range_uses_online_count():
    assert err(parse, cpus="3") == "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
    assert err(parse, "0,2-3", cpus="4.5") == \
        "Range of CPUs is from 0.01 to 3.00, as there are only 3 CPUs available"
    assert err(parse, cpus="-1") == "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
    assert err(parse, cpus="0.001") == "Range of CPUs is from 0.01 to 2.00, as there are only 2 CPUs available"
    assert parse(cpus="2").nano_cpus == 2 * 10 ** 9
    assert parse(cpus="0.01").nano_cpus == 10 ** 7
    assert parse("", cpus="64").nano_cpus == 64 * 10 ** 9  # "" = don't check
    assert err(parse, cpus="x") == 'invalid argument "x" for "--cpus" flag: failed to parse x as a rational number'


def test_cpuset_messages():
    assert err(parse, cpuset_cpus="0-3") == "Requested CPUs are not available - requested 0-3, available: 0-1"
    assert err(parse, cpuset_mems="1") == "Requested memory nodes are not available - requested 1, available: 0"
    assert err(parse, cpuset_cpus="1-x") == "Invalid value 1-x for cpuset cpus: invalid format: 1-x"
    assert err(parse, cpuset_mems="1-x") == "Invalid value 1-x for cpuset mems: invalid format: 1-x"
    assert err(parse, "0-1\n", cpuset_cpus="5") == "Requested CPUs are not available - requested 5, available: 0-1"
    assert parse(cpuset_cpus="1,0", cpuset_mems="0").cpuset_cpus == "1,0"
    assert parse("", "", cpuset_cpus="0-63").cpuset_cpus == "0-63"
    assert err(parse, "", "", cpuset_cpus="x") == "Invalid value x for cpuset cpus: invalid format: x"


def test_cpu_shares_range_as_runc_reports_it():
    assert parse(cpu_shares="2").cpu_shares == 2
    assert parse(cpu_shares="262144").cpu_shares == 262144
    assert err(parse, cpu_shares="1") == "the minimum allowed cpu-shares is 2"
    assert err(parse, cpu_shares="262145") == "the maximum allowed cpu-shares is 262144"
    assert err(parse, cpu_shares="-1") == "shares: invalid argument"
    assert err(parse, cpu_shares="x") == \
        'invalid argument "x" for "-c, --cpu-shares" flag: strconv.ParseInt: parsing "x": invalid syntax'


def test_oom_score_adj():
    assert parse(oom_score_adj="1000").oom_score_adj == 1000
    assert parse(oom_score_adj="-1000").oom_score_adj == -1000
    assert err(parse, oom_score_adj="1001") == "Invalid value 1001, range for oom score adj is [-1000, 1000]"
    assert err(parse, oom_score_adj="-1001") == "Invalid value -1001, range for oom score adj is [-1000, 1000]"
    assert err(parse, oom_score_adj="0x10") == \
        'invalid argument "0x10" for "--oom-score-adj" flag: strconv.ParseInt: parsing "0x10": invalid syntax'


def test_check_order_follows_docker():
    # flag parse errors come before the daemon's checks
    assert err(parse, memory="1m", pids_limit="x").startswith('invalid argument "x" for "--pids-limit"')
    # memory before cpus before cpuset before oom-score-adj before cpu-shares
    assert err(parse, memory="1m", cpus="9") == "Minimum memory limit allowed is 6MB"
    assert err(parse, cpus="9", cpuset_cpus="7").startswith("Range of CPUs")
    assert err(parse, cpuset_cpus="7", oom_score_adj="5000").startswith("Requested CPUs")
    assert err(parse, oom_score_adj="5000", cpu_shares="1").startswith("Invalid value 5000")


# --- Resources object ---------------------------------------------------------------------------

def test_init_rejects_unknown_and_defaults_to_none():
    with pytest.raises(TypeError):
        Resources(cpus=1)
    r = Resources(memory=10 * MiB)
    assert r.memory == 10 * MiB and r.memory_swap is None and r.any()
    with pytest.raises(AttributeError):
        r.other = 1  # __slots__


def test_to_dict_from_dict_round_trip():
    r = parse(memory="256m", memory_swap="-1", cpus="0.5", cpuset_cpus="0", pids_limit="-1", oom_score_adj="0")
    d = r.to_dict()
    assert d == {"memory": 256 * MiB, "memory_swap": -1, "nano_cpus": 500_000_000, "cpuset_cpus": "0",
                 "pids_limit": -1, "oom_score_adj": 0}
    assert Resources.from_dict(d) == r
    assert Resources.from_dict(None) == Resources()
    assert Resources.from_dict({}) == Resources()
    assert Resources.from_dict({**d, "blkio_weight": 10}) == r  # newer keys are dropped


def test_docker_host_config():
    zero = {"Memory": 0, "MemorySwap": 0, "MemoryReservation": 0, "NanoCpus": 0, "CpuShares": 0, "CpuQuota": 0,
            "CpuPeriod": 0, "CpusetCpus": "", "CpusetMems": "", "PidsLimit": None, "OomScoreAdj": 0}
    assert Resources().docker_host_config() == zero
    assert parse(memory="100m").docker_host_config() == {**zero, "Memory": 100 * MiB, "MemorySwap": 200 * MiB}
    assert parse(memory="100m", memory_swap="-1").docker_host_config()["MemorySwap"] == -1
    assert parse(memory="100m", memory_swap="300m").docker_host_config()["MemorySwap"] == 300 * MiB
    assert parse(pids_limit="50").docker_host_config()["PidsLimit"] == 50
    assert parse(pids_limit="0").docker_host_config()["PidsLimit"] is None
    full = parse(memory="1g", memory_reservation="512m", cpus="1.5", cpu_shares="512", cpuset_cpus="0",
                 cpuset_mems="0", oom_score_adj="100").docker_host_config()
    assert full == {**zero, "Memory": GiB, "MemorySwap": 2 * GiB, "MemoryReservation": 512 * MiB,
                    "NanoCpus": 1_500_000_000, "CpuShares": 512, "CpusetCpus": "0", "CpusetMems": "0",
                    "OomScoreAdj": 100}


# --- update ---------------------------------------------------------------------------------------

def upd(**opts):
    return parse(update=True, **opts)


def test_update_swap_without_memory_is_allowed_when_updating():
    assert upd(memory_swap="1g").memory_swap == GiB


def test_merged_overrides_and_keeps_docker_stored_swap():
    cur = parse(memory="100m", cpus="1", pids_limit="10")
    new = cur.merged(upd(memory="150m", pids_limit="-1"))
    # Docker stored MemorySwap = 200m at create; a --memory-only update keeps it
    assert new.to_dict() == {"memory": 150 * MiB, "memory_swap": 200 * MiB, "nano_cpus": 10 ** 9, "pids_limit": -1}
    assert cur.to_dict() == {"memory": 100 * MiB, "nano_cpus": 10 ** 9, "pids_limit": 10}  # not mutated
    both = cur.merged(upd(memory="300m", memory_swap="1g"))
    assert (both.memory, both.memory_swap) == (300 * MiB, GiB)
    assert Resources().merged(upd(cpus="0.5")).to_dict() == {"nano_cpus": 500_000_000}


def test_validate_update_memory_above_stored_swap():
    msg = "Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time"
    cur = parse(memory="100m")
    upd(memory="150m").validate_update(cur)
    upd(memory="200m").validate_update(cur)
    assert err(upd(memory="250m").validate_update, cur) == msg
    upd(memory="250m", memory_swap="1g").validate_update(cur)
    # no memory limit at create: Docker stored MemorySwap 0, so --memory needs --memory-swap
    assert err(upd(memory="64m").validate_update, Resources()) == msg
    upd(memory="64m", memory_swap="-1").validate_update(Resources())
    # --memory-swap -1 at create: Docker compares against -1 and refuses too
    assert err(upd(memory="64m").validate_update, parse(memory="32m", memory_swap="-1")) == msg


def test_validate_update_checks_the_merged_set():
    cur = parse(memory="100m", memory_reservation="50m")
    assert err(upd(memory_swap="50m").validate_update, cur) == \
        "Minimum memoryswap limit should be larger than memory limit, see usage"
    assert err(upd(memory_reservation="200m").validate_update, cur) == \
        "Minimum memory limit can not be less than memory reservation limit, see usage"
    assert err(upd(memory_swap="1g").validate_update, Resources()) == \
        "You should always set the Memory limit when using Memoryswap limit, see usage"
    upd(memory_swap="1g", cpus="1", pids_limit="0").validate_update(cur)


# --- cgroup files ---------------------------------------------------------------------------------

def test_v1_writes_memory_only_docker_default_swap():
    assert parse(memory="256m").v1_writes() == [
        ("memory", "memory.limit_in_bytes", "268435456"),
        ("memory", "memory.memsw.limit_in_bytes", "536870912"),
    ]


def test_v1_writes_full_set_in_runc_order():
    r = parse(memory="256m", memory_swap="1g", memory_reservation="128m", cpus="1.5", cpu_shares="512",
              cpuset_cpus="0-1", cpuset_mems="0", pids_limit="100", oom_score_adj="10")
    assert r.v1_writes() == [
        ("cpuset", "cpuset.cpus", "0-1"),
        ("cpuset", "cpuset.mems", "0"),
        ("memory", "memory.limit_in_bytes", "268435456"),
        ("memory", "memory.memsw.limit_in_bytes", "1073741824"),
        ("memory", "memory.soft_limit_in_bytes", "134217728"),
        ("cpu", "cpu.shares", "512"),
        ("cpu", "cpu.cfs_period_us", "100000"),
        ("cpu", "cpu.cfs_quota_us", "150000"),
        ("pids", "pids.max", "100"),
    ]


def test_v1_memory_order_follows_current_limit():
    r = parse(memory="256m", memory_swap="512m")
    mem = ("memory", "memory.limit_in_bytes", "268435456")
    sw = ("memory", "memory.memsw.limit_in_bytes", "536870912")
    assert r.v1_writes() == [mem, sw]  # new cgroup: limit is "unlimited"
    assert r.v1_writes(current_limit=128 * MiB) == [sw, mem]  # raising: memsw first
    assert r.v1_writes(current_limit=GiB) == [mem, sw]  # lowering: memory first
    unl = parse(memory="256m", memory_swap="-1").v1_writes(current_limit=GiB)
    assert unl == [("memory", "memory.memsw.limit_in_bytes", "-1"), mem]


def test_v1_writes_unlimited_and_lone_values():
    assert parse(pids_limit="-1").v1_writes() == [("pids", "pids.max", "max")]
    assert parse(memory_swap="-1").v1_writes() == [("memory", "memory.memsw.limit_in_bytes", "-1")]
    assert parse(cpus="0.5").v1_writes() == [("cpu", "cpu.cfs_period_us", "100000"),
                                             ("cpu", "cpu.cfs_quota_us", "50000")]
    assert parse(oom_score_adj="500").v1_writes() == []  # /proc/PID/oom_score_adj, not a cgroup file
    assert Resources().v1_writes() == []


def test_v2_writes_full_set_in_runc_order():
    r = parse(memory="256m", memory_swap="1g", memory_reservation="128m", cpus="1.5", cpu_shares="1024",
              cpuset_cpus="0-1", cpuset_mems="0", pids_limit="100", oom_score_adj="10")
    assert r.v2_writes() == [
        ("pids.max", "100"),
        ("memory.swap.max", "805306368"),
        ("memory.max", "268435456"),
        ("memory.low", "134217728"),
        ("cpu.weight", "39"),
        ("cpu.max", "150000 100000"),
        ("cpuset.cpus", "0-1"),
        ("cpuset.mems", "0"),
    ]


def test_v2_swap_values():
    assert parse(memory="256m").v2_writes() == [("memory.swap.max", "268435456"), ("memory.max", "268435456")]
    assert parse(memory="256m", memory_swap="256m").v2_writes() == [("memory.swap.max", "0"),
                                                                    ("memory.max", "268435456")]
    assert parse(memory="256m", memory_swap="-1").v2_writes() == [("memory.swap.max", "max"),
                                                                  ("memory.max", "268435456")]
    assert parse(memory_swap="-1").v2_writes() == [("memory.swap.max", "max")]
    assert parse(pids_limit="0").v2_writes() == [("pids.max", "max")]
    assert parse(cpus="0.25").v2_writes() == [("cpu.max", "25000 100000")]
    assert Resources().v2_writes() == []


def test_shares_to_weight():
    assert shares_to_weight(2) == 1
    assert shares_to_weight(1024) == 39
    assert shares_to_weight(262144) == 10000
    assert shares_to_weight(512) == 20
    assert shares_to_weight(0) == 0


def test_writes_after_update_use_the_merged_set():
    cur = parse(memory="100m")
    new = cur.merged(upd(memory="150m"))
    assert new.v1_writes(current_limit=100 * MiB) == [
        ("memory", "memory.memsw.limit_in_bytes", str(200 * MiB)),
        ("memory", "memory.limit_in_bytes", str(150 * MiB)),
    ]
    assert new.v2_writes() == [("memory.swap.max", str(50 * MiB)), ("memory.max", str(150 * MiB))]


def test_import_is_light():
    code = ("import sys; import minirt.cgroups.limits; "
            "print(sorted(m for m in ('re', 'dataclasses', 'json', 'enum', 'fractions') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": ":".join(p for p in sys.path if p)}).stdout
    assert out.strip() == "[]"


def test_update_flags_accept_memory_swap_alone_as_docker_update_does():
    from minirt.cgroups import flags
    from minirt.cliparse import parse

    opts, _ = parse(flags.OPTIONS, ["--memory-swap", "256m", "web"], stop_at_operand=False)
    assert flags.resources(opts, update=True).memory_swap == 256 << 20
    with pytest.raises(ConfigError, match="always set the Memory limit"):
        flags.resources(opts)  # `run` refuses it, as `docker run` does
