"""`minirt stats`: Docker's numbers from two samples, and Docker's rows, table and JSON lines.

Runs in: the `minirt stats` process, host namespaces; only reads (cgroupfs, /proc, /sys/class/net).

Where each number comes from (Docker: moby daemon/stats/collector_unix.go and stats_unix.go
produce a sample, docker/cli cli/command/container/stats_helpers.go turns two into a row):
- CPU %: (container CPU delta / system CPU delta) * online CPUs * 100 (calculateCPUPercentUnix).
  The system figure is the `cpu` line of /proc/stat, its first seven fields (user .. softirq,
  not steal or guest) summed and turned from USER_HZ ticks into ns, as moby's
  readSystemCPUUsage does; the online CPUs are its `cpuN` lines.
- MEM USAGE: the cgroup's usage minus its inactive file cache (the drivers' stats(), the CLI's
  calculateMemUsageUnixNoCache). LIMIT: the cgroup's, or the host's MemTotal when it has none
  (v1 reports a huge number, v2 "max"), as moby caps it at the machine's memory.
- NET I/O: the container's view of its host veths: what the host end sent (tx_bytes) is what
  the container received (counters from /proc/net/dev: net_counters says why not /sys).
  Summed over the first network and those added by `network connect`;
  --net none/host have no veth of their own: 0B / 0B (Docker shows no networks for them).
- BLOCK I/O and PIDS: the drivers' stats().
"""

from minirt.cgroups.fsutil import slurp

USER_HZ = 100  # the unit of /proc/stat's ticks (sysconf(_SC_CLK_TCK), 100 on every Linux ABI)
NS_PER_TICK = 1_000_000_000 // USER_HZ
HEADER = ("CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "NET I/O", "BLOCK I/O", "PIDS")
KEYS = ("ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "NetIO", "BlockIO", "PIDs")  # the columns' fields


def system_cpu(path: str = "/proc/stat") -> tuple[int, int]:
    """(the host's CPU time in ns, online CPUs), from one read of /proc/stat."""
    total = online = 0
    for line in slurp(path).split("\n"):
        if not line.startswith("cpu"):
            break  # the cpu lines come first (proc(5))
        name, _, rest = line.partition(" ")
        if name == "cpu":
            total = sum(int(x) for x in rest.split()[:7]) * NS_PER_TICK
        else:
            online += 1
    return total, online


def mem_total(path: str = "/proc/meminfo") -> int:
    """MemTotal in bytes (the kernel writes kB, meaning KiB)."""
    for line in slurp(path).split("\n"):
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def cpu_percent(cpu_delta: int, system_delta: int, online: int) -> float:
    """Docker's formula; 0 unless both deltas moved forward (a first sample, a stopped container)."""
    if system_delta > 0 and cpu_delta > 0:
        return cpu_delta / system_delta * online * 100.0
    return 0.0


def mem_limit(limit: int, total: int) -> int:
    """The cgroup's limit, or the host's memory when it has none or a larger one: v1 writes a huge
    number (9223372036854771712, LONG_MAX rounded to pages), v2 "max" (-1 from fsutil.read_int)."""
    if total > 0 and (limit <= 0 or limit > total):
        return total
    return limit


def ifnames(rec: dict) -> list[str]:
    """The host ends of the container's veths: the first network's, then connected ones'."""
    out = [(rec.get("network") or {}).get("host_ifname")]
    out += [e.get("host_ifname") for e in rec.get("connected") or []]
    return [n for n in out if n]


def net_counters(path: str = "/proc/net/dev") -> dict[str, tuple[int, int]]:
    """{ifname: (rx_bytes, tx_bytes)} of the reader's network namespace, in one read. The same
    counters as /sys/class/net/IF/statistics/, but /proc/net follows the reading process's netns
    while /sys shows the netns of whoever mounted sysfs (a `unshare -n` shell still sees the
    host's), and one file serves every container."""
    out = {}
    for line in slurp(path).split("\n")[2:]:  # two header lines (proc(5), /proc/net/dev)
        name, _, rest = line.partition(":")
        f = rest.split()
        if len(f) >= 9:
            out[name.strip()] = (int(f[0]), int(f[8]))
    return out


def net_io(names: list[str], counters: dict[str, tuple[int, int]]) -> tuple[int, int]:
    """(received, sent) as the container counts them: the host ends' counters swapped. A veth
    already gone (the container is stopping) counts 0."""
    rx = tx = 0
    for name in names:
        host_rx, host_tx = counters.get(name, (0, 0))
        rx, tx = rx + host_tx, tx + host_rx
    return rx, tx


class Entry:
    """One container's row before formatting: Docker's StatsEntry (formatter_stats.go)."""

    __slots__ = ("container", "id", "name", "cpu", "mem", "limit", "net_rx", "net_tx", "blk_read", "blk_write",
                 "pids", "invalid")  # fmt: skip

    def __init__(self, container: str, cid: str, name: str, invalid: bool = False):
        self.container, self.id, self.name, self.invalid = container, cid, name, invalid
        self.cpu = 0.0
        self.mem = self.limit = self.net_rx = self.net_tx = self.blk_read = self.blk_write = self.pids = 0

    def fill(self, st: dict, cpu: float, total_mem: int, net: tuple[int, int]) -> "Entry":
        """From a driver's stats() and the CPU % of two samples."""
        self.cpu = cpu
        self.mem, self.limit = st["mem_usage"], mem_limit(st["mem_limit"], total_mem)
        self.net_rx, self.net_tx = net
        self.blk_read, self.blk_write, self.pids = st["blk_read"], st["blk_write"], st["pids"]
        return self


def _pct(v: float) -> str:
    return f"{v:.2f}%"  # Go strconv.FormatFloat(v, 'f', 2, 64) + "%"


def fields(e: Entry, trunc: bool = True) -> dict[str, str]:
    """Docker's placeholders (.Container, .ID, .CPUPerc, ...) as strings. An invalid entry (no data:
    Docker's "timeout waiting for stats") shows "--"."""
    from minirt.cgroups.limits import format_bytes, format_decimal_bytes

    out = {"Container": e.container, "ID": e.id[:12] if trunc else e.id, "Name": e.name or "--"}
    if e.invalid:
        out.update(CPUPerc="--", MemUsage="-- / --", MemPerc="--", NetIO="--", BlockIO="--", PIDs="--")
        return out
    out["CPUPerc"] = _pct(e.cpu)
    out["MemUsage"] = f"{format_bytes(e.mem)} / {format_bytes(e.limit)}"
    out["MemPerc"] = _pct(e.mem / e.limit * 100.0 if e.limit else 0.0)  # calculateMemPercentUnixNoCache
    out["NetIO"] = f"{format_decimal_bytes(e.net_rx)} / {format_decimal_bytes(e.net_tx)}"
    out["BlockIO"] = f"{format_decimal_bytes(e.blk_read)} / {format_decimal_bytes(e.blk_write)}"
    out["PIDs"] = str(e.pids)
    return out


def table(rows: list[dict[str, str]]) -> str:
    """Docker's default table: Go's tabwriter as docker/cli sets it up (minwidth 10, padding 3;
    the last column is not padded)."""
    lines = [HEADER] + [tuple(r[k] for k in KEYS) for r in rows]
    widths = [max(10, max(len(line[i]) for line in lines) + 3) for i in range(len(KEYS) - 1)]
    return "".join("".join(c.ljust(w) for c, w in zip(line, widths)) + line[-1] + "\n" for line in lines)


def json_line(row: dict[str, str]) -> str:
    """`--format json`: one object per line, keys sorted and no spaces, as Go's json.Marshal of
    docker/cli's map of placeholders writes it."""
    from _json import encode_basestring_ascii as s

    return "{" + ",".join(f"{s(k)}:{s(row[k])}" for k in sorted(row)) + "}\n"
