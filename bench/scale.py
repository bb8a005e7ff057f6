#!/usr/bin/env python3
"""`make bench BENCH_SCALE=N`: N detached containers on one network, on one host (issue 15).

Inside a throwaway host namespace (bench.py's holder: its own network namespace, a private mount
namespace with its own sysfs and /run, the real cgroup tree on top), with a temporary
MINIRT_ROOT and a cgroup parent nested under the bench's own cgroup (bench.setup_cgroup_parent):

1. `network create --subnet 10.123.0.0/20 scalenet`, then N x `minirt run -d --net scalenet`,
   one after the other, each timed: `sleep 3600`, except a sample of up to 50 that publish a port
   (`-p 30000+i:80`) and run busybox `httpd`. Free memory is checked every 10 starts; below
   MEM_FLOOR_MIB the bench stops starting and says so.
2. Reachability: the last container pings a sample of up to 50 others (one `exec` with a shell
   loop), and the holder's loopback (the "host") fetches / from each published port.
3. At N running: `ps`, `ps -a --format json`, `inspect` of one, `stats --no-stream` (warm-up once,
   then RUNS timed runs each, median and max).
4. Memory: PSS and RSS (/proc/PID/smaps_rollup) of every process of minirt's (the venv's python,
   with this bench's MINIRT_ROOT in its environment), per container; and the holder's
   MemAvailable drop per container (kernel objects included). The holder's conntrack count, the
   nft elements (sets and maps) and the veth count.
5. `rm -f` of all, in one call, timed; then nothing may be left: no record, no veth, no element.

Traffic never leaves the holder (it has loopback and the bridge only, no uplink). The holder is
killed and the cgroup parent removed in every hierarchy at the end, whatever happened; a container
cgroup left in it is an error. Goals (printed met/missed): ps median ≤ 150 ms, inspect median
≤ 40 ms, start p99 ≤ 3 × p50, rm -f of all ≤ 60 s, no error.

The report (Markdown) is printed and, unless --quick without --out, written to
bench/results/scale-<N>.md with the raw numbers in scale-<N>.json and a chart of the start time
per container against its index in scale-<N>.png (matplotlib, when installed).

--docker runs the same steps on Docker 20.10 instead (docker_side: `make compare`'s throwaway
namespace) and writes scale-<N>-docker.md/.json; --replot JSON draws a chart again.

    bench/scale.py [--count N] [--runs R] [--out PATH] [--quick] [--docker] [--replot JSON]
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # the harness's holder, cgroup parent and formatting helpers

REPO = bench.REPO
MINIRT = bench.MINIRT
VPY = bench.VPY
RESULTS_DIR = os.path.join(REPO, "bench", "results")

NETWORK = "scalenet"
SUBNET = "10.123.0.0/20"  # 4094 addresses: the bridge's 1023 ports run out first
PORT_BASE = 30000
SAMPLE = 50  # containers pinged by the last one; published ports fetched by the host
RUNS = 5
MEM_FLOOR_MIB = 2048  # stop starting containers when MemAvailable falls below this
START_TIMEOUT_S = 120
IDLE_S = 10.0  # the idle window after the last start (issue 15: 0 wakeups/s, checked over 10 s)

GOALS = {"ps": 150.0, "inspect": 40.0, "p99/p50": 3.0, "rm": 60.0}

# One GET per published port from the holder's loopback; prints "ok PORT" or "fail PORT why".
FETCH = r"""
import socket, sys, time
for port in map(int, sys.argv[1:]):
    deadline, why = time.monotonic() + 10, ""
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
                data = b""
                while chunk := s.recv(4096):
                    data += chunk
            if data.startswith(b"HTTP/1.") and b"minirt" in data:
                print("ok", port); break
            why = repr(data[:40])
        except OSError as e:
            why = str(e)
        if time.monotonic() > deadline:
            print("fail", port, why); break
        time.sleep(0.1)
"""


# ---------------------------------------------------------------------------------------------
# Pure helpers (unit-tested)


def spread_sample(count: int, k: int) -> list[int]:
    """k indexes spread evenly over range(count) (all of them when count ≤ k), ascending."""
    if count <= 0 or k <= 0:
        return []
    if count <= k:
        return list(range(count))
    return sorted({round(i * (count - 1) / (k - 1)) for i in range(k)}) if k > 1 else [0]


def count_nft_elements(ruleset: dict) -> int:
    """The elements of every set and map in `nft -j list ruleset`'s output."""
    n = 0
    for item in ruleset.get("nftables", []):
        for kind in ("set", "map"):
            obj = item.get(kind)
            if isinstance(obj, dict):
                n += len(obj.get("elem") or [])
    return n


def parse_smaps_rollup(text: str) -> dict[str, int]:
    """{"Pss": kB, "Rss": kB, ...} of a /proc/PID/smaps_rollup text."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].endswith(":") and parts[2] == "kB":
            out[parts[0][:-1]] = int(parts[1])
    return out


def goal_lines(m: dict) -> list[str]:
    """met/missed for each goal the measurements `m` allow (missing ones say why)."""
    out = []

    def line(what, ok, detail):
        out.append(f"goal: {what}: {'met' if ok else 'missed'} ({detail})")

    cmds = m.get("commands", {})
    for key, label in (("ps", "ps"), ("inspect", "inspect of one")):
        s = cmds.get(key)
        if s and s.get("median") is not None:
            line(f"{label} median ≤ {GOALS[key]:g} ms at {m['started']} containers", s["median"] <= GOALS[key],
                 f"{s['median']:.1f} ms")
        else:
            out.append(f"goal: {label} ≤ {GOALS[key]:g} ms: not measured")
    st = m.get("start")
    if st:
        r = st["p99"] / st["p50"] if st["p50"] else float("inf")
        line(f"start p99 ≤ {GOALS['p99/p50']:g} × p50", r <= GOALS["p99/p50"],
             f"p50 {st['p50']:.1f} ms, p99 {st['p99']:.1f} ms: {r:.2f}×")
    if m.get("rm_s") is not None:
        line(f"rm -f of all ≤ {GOALS['rm']:g} s", m["rm_s"] <= GOALS["rm"], f"{m['rm_s']:.1f} s for {m['started']}")
    errors = m.get("errors", [])
    line("no error", not errors, f"{len(errors)} error(s)" if errors else "none")
    return out


def render(m: dict) -> str:
    """The Markdown report of one scale run (m: the JSON written beside it)."""
    t = bench.render_table
    out = [f"# minirt at scale: {m['count']} containers on one network", ""]
    out += [f"- {k}: {v}" for k, v in m["meta"].items()]
    out += ["", "## start", ""]
    st = m.get("start")
    if m.get("stopped_early"):
        out.append(f"**stopped early**: {m['stopped_early']}")
        out.append("")
    if st:
        out.append(t([[m["started"], f"{m['start_total_s']:.1f}", f"{st['p50']:.1f}", f"{st['p90']:.1f}",
                       f"{st['p99']:.1f}", f"{st['min']:.1f}", f"{st['max']:.1f}",
                       f"{m['started'] / m['start_total_s']:.1f}"]],
                     ["containers", "total s", "p50 ms", "p90 ms", "p99 ms", "min ms", "max ms", "containers/s"]))
        if m.get("start_by_decile"):
            out.append("start median per tenth of the run (ms): "
                       + ", ".join(f"{a}–{b}: {v:.1f}" for a, b, v in m["start_by_decile"]))
            out.append("")
    if m.get("phases"):
        out.append("where a start's time goes, first tenth against last tenth of the starts (MINIRT_TIMING=1 "
                   "marks, medians per phase; the 8 that grew most):")
        out.append("")
        out.append(t([[name, f"{a:.1f}", f"{b:.1f}", f"{b - a:+.1f}"] for name, a, b in m["phases"][:8]],
                     ["phase", "first tenth ms", "last tenth ms", "growth ms"], "lrrr"))
    b0, b1 = m.get("baseline_before") or {}, m.get("baseline_at_n") or {}
    if b0 and b1:
        out.append("processes that do no per-container work (`nsenter` into the holder + the command; median of 10):")
        out.append("")
        out.append(t([[k, f"{b0[k]:.1f}" if isinstance(b0[k], float) else b0[k],
                       f"{b1[k]:.1f}" if isinstance(b1.get(k), float) else b1.get(k, "")] for k in b0],
                     ["command", "before the first container, ms", f"at {m['started']} containers, ms"], "lrr"))
    out += ["## reachability", ""]
    for key, what in (("ping", f"the last container pings {len(m.get('ping', {}).get('targets', []))} others"),
                      ("fetch", f"the host GETs / from {len(m.get('fetch', {}).get('targets', []))} published ports")):
        r = m.get(key)
        if not r:
            out.append(f"- {what}: not run")
            continue
        out.append(f"- {what}: {r['ok']}/{len(r['targets'])} ok in {r['seconds']:.1f} s"
                   + (f" ({len(r['retried'])} answered on the second try: {', '.join(r['retried'][:10])})"
                      if r.get("retried") else "")
                   + (f"; failed: {', '.join(r['failed'][:10])}" if r["failed"] else ""))
    out += ["", f"## commands at {m['started']} running containers ({m['runs']} runs each after a warm-up)", ""]
    rows = []
    for s in m.get("commands", {}).values():
        cmd = s["argv"]
        if s.get("median") is None:
            rows.append([cmd, "failed", "", "", s.get("error", "")[:80]])
        else:
            rows.append([cmd, f"{s['median']:.1f}", f"{s['min']:.1f}", f"{s['max']:.1f}",
                         f"{s['lines']} lines out"])
    out.append(t(rows, ["command", "median ms", "min ms", "max ms", "note"], "lrrrl"))
    out += ["## memory and kernel objects at N", ""]
    mem = m.get("memory")
    if mem:
        n = max(m["started"], 1)
        out.append(f"- minirt's processes: {mem['processes']} ({mem['processes'] / n:.2f} per container); "
                   f"PSS {mem['pss_kib'] / 1024:.1f} MiB in all, **{mem['pss_kib'] / 1024 / n:.2f} MiB per "
                   f"container**; RSS {mem['rss_kib'] / 1024 / n:.2f} MiB per container")
        out.append(f"- MemAvailable dropped by {mem['available_drop_mib']:.0f} MiB while starting: "
                   f"{mem['available_drop_mib'] / n:.2f} MiB per container (processes, cgroups, netns, "
                   "veths, page cache of the records)")
    idle = m.get("idle")
    if idle:
        out.append(f"- idle, over {idle['seconds']:g} s after the last start: {idle['processes']} minirt processes "
                   f"woke {idle['wakeups_per_s']:.1f} times/s in all and used {idle['cpu_ms_per_s']:.1f} ms CPU/s "
                   "(/proc/PID/schedstat)")
    k = m.get("kernel", {})
    out.append(f"- in the holder at N: conntrack entries {k.get('conntrack', 'n/a')}, nft set/map elements "
               f"{k.get('nft_elements', 'n/a')}, veths {k.get('veths', 'n/a')}, mounts {k.get('mounts', 'n/a')}")
    kb = m.get("kernel_before", {})
    out.append(f"- before the first container (the network alone): conntrack {kb.get('conntrack', 'n/a')}, "
               f"nft elements {kb.get('nft_elements', 'n/a')}, veths {kb.get('veths', 'n/a')}, "
               f"mounts {kb.get('mounts', 'n/a')}")
    ka = m.get("kernel_after", {})
    out.append(f"- after rm -f of all: conntrack {ka.get('conntrack', 'n/a')}, nft elements "
               f"{ka.get('nft_elements', 'n/a')}, veths {ka.get('veths', 'n/a')}, mounts {ka.get('mounts', 'n/a')}, "
               f"records {ka.get('records', 'n/a')}")
    out += ["", "## rm -f of all", ""]
    if m.get("rm_s") is not None:
        out.append(f"`minirt rm -f` of {m['started']} containers in one call: {m['rm_s']:.1f} s "
                   f"({m['rm_s'] * 1000 / max(m['started'], 1):.1f} ms per container)")
    else:
        out.append("not run")
    out += ["", "## goals", ""] + goal_lines(m)
    if m.get("errors"):
        out += ["", "## errors", ""] + [f"error: {e}" for e in m["errors"]]
    return "\n".join(out) + "\n"


def phase_growth(runs: list[dict[str, float]]) -> list[list]:
    """Per timing phase of `run -d` (bench.phases), its median over the first tenth of the starts
    and over the last tenth: which step grows with the number of containers. Rows sorted by the
    growth, largest first. runs: the first tenth's, then as many of the last tenth's."""
    if len(runs) < 2 or len(runs) % 2:
        return []
    k = len(runs) // 2  # phase_runs gives the first tenth, then the last
    first, last = dict(bench.phase_medians(runs[:k])[0]), dict(bench.phase_medians(runs[-k:])[0])
    rows = [[name, first[name]["median"], last[name]["median"]] for name in first if name in last]
    return sorted(rows, key=lambda r: r[1] - r[2])


def deciles(samples: list[float]) -> list[tuple[int, int, float]]:
    """(first index, last index, median ms) of each tenth of the start samples, in order."""
    n = len(samples)
    if n < 10:
        return []
    out = []
    for d in range(10):
        a, b = d * n // 10, (d + 1) * n // 10
        out.append((a, b - 1, bench.percentile(samples[a:b], 50)))
    return out


# ---------------------------------------------------------------------------------------------
# Measurement (root)


def mem_available_mib() -> float:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return 0.0


def minirt_processes(root: str) -> list[int]:
    """Pids of minirt's own processes for this bench: the venv's python with MINIRT_ROOT=root in
    the environment (supervisors, sentinels, helpers; whatever the process model is)."""
    me, want = os.getpid(), f"MINIRT_ROOT={root}".encode()
    python = os.path.realpath(VPY)
    pids = []
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == me:
            continue
        try:
            if os.path.realpath(f"/proc/{d}/exe") != python:
                continue
            with open(f"/proc/{d}/environ", "rb") as f:
                if want in f.read().split(b"\0"):
                    pids.append(int(d))
        except OSError:
            continue
    return pids


def memory(root: str) -> dict:
    pids = minirt_processes(root)
    pss = rss = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                v = parse_smaps_rollup(f.read())
        except OSError:
            continue
        pss += v.get("Pss", 0)
        rss += v.get("Rss", 0)
    return {"processes": len(pids), "pss_kib": pss, "rss_kib": rss}


def schedstat(pids: list[int]) -> tuple[int, int]:
    """(CPU ns, timeslices) summed over /proc/PID/schedstat of pids (the ones still there):
    the second field counts the times a task was scheduled in, i.e. its wakeups."""
    ns = slices = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/schedstat") as f:
                a, _wait, c = f.read().split()[:3]
        except (OSError, ValueError):
            continue
        ns += int(a)
        slices += int(c)
    return ns, slices


def idle_activity(root: str, seconds: float) -> dict:
    """What minirt's processes do while every container idles: wakeups per second and CPU."""
    pids = minirt_processes(root)
    ns0, s0 = schedstat(pids)
    time.sleep(seconds)
    ns1, s1 = schedstat(pids)
    return {"seconds": seconds, "processes": len(pids), "wakeups_per_s": (s1 - s0) / seconds,
            "cpu_ms_per_s": (ns1 - ns0) / 1e6 / seconds}


class Scale:
    def __init__(self, args):
        self.args = args
        self.errors: list[str] = []
        self.m: dict = {"count": args.count, "runs": args.runs, "started": 0, "errors": self.errors}
        self.published: list[int] = []

    def sh(self, argv, timeout=START_TIMEOUT_S, check=True, env=None):
        """Run argv inside the holder; (ms, CompletedProcess)."""
        t0 = time.perf_counter()
        try:
            p = subprocess.run(self.inside + argv, env=env or self.env, stdin=subprocess.DEVNULL, capture_output=True,
                               text=True, timeout=timeout)  # fmt: skip
        except subprocess.TimeoutExpired:
            raise bench.RunFailed(f"{' '.join(argv[:6])}: timed out after {timeout} s") from None
        ms = (time.perf_counter() - t0) * 1000
        if check and p.returncode != 0:
            raise bench.RunFailed(f"{' '.join(argv[:8])}: exit {p.returncode}: "
                                  f"{bench.first_error_line(p.stderr, p.returncode)}")
        return ms, p

    def baseline(self) -> dict:
        """Processes that do no per-container work, timed in the holder (median of 10 each): does
        the machine itself get slower per process as containers pile up?"""
        out = {}
        for key, argv in (("python -S -c pass", [VPY, "-S", "-c", "pass"]), ("/bin/true", ["/bin/true"]),
                          ("minirt --version", [MINIRT, "--version"])):
            try:
                out[key] = bench.percentile([self.sh(argv)[0] for _ in range(10)], 50)
            except bench.RunFailed as e:
                out[key] = f"failed: {e}"
        return out

    def kernel(self) -> dict:
        out = {}
        _, p = self.sh(["cat", "/proc/sys/net/netfilter/nf_conntrack_count"], check=False)
        out["conntrack"] = int(p.stdout) if p.returncode == 0 and p.stdout.strip().isdigit() else "n/a"
        _, p = self.sh(["nft", "-j", "list", "ruleset"], check=False)
        try:
            out["nft_elements"] = count_nft_elements(json.loads(p.stdout)) if p.returncode == 0 else "n/a"
        except ValueError:
            out["nft_elements"] = "n/a"
        _, p = self.sh(["ip", "-j", "link", "show", "type", "veth"], check=False)
        out["veths"] = len(json.loads(p.stdout or "[]")) if p.returncode == 0 else "n/a"
        with open(f"/proc/{self.holder_pid}/mountinfo") as f:
            out["mounts"] = sum(1 for _ in f)
        return out

    def record(self, name: str) -> dict:
        with open(f"{self.root}/names/{name}") as f:
            cid = f.read().strip()
        return bench_read_json(f"{self.root}/containers/{cid}/state.json")

    def start_all(self):
        n = self.args.count
        others = list(range(n - 1))
        self.published = [others[i] for i in spread_sample(len(others), SAMPLE)] if n > 1 else []
        pub = set(self.published)
        self.names = [f"s{i}" for i in range(n)]
        self.started: list[str] = []
        samples: list[float] = []
        timed: list[tuple] = []  # (name, spawn ms, end ms, the caller's MINIRT_TIMING=1 marks), in order
        avail0 = mem_available_mib()
        t0 = time.perf_counter()
        for i, name in enumerate(self.names):
            if i % 10 == 0:
                avail = mem_available_mib()
                if avail < MEM_FLOOR_MIB:
                    self.m["stopped_early"] = (f"MemAvailable {avail:.0f} MiB < {MEM_FLOOR_MIB} MiB after "
                                               f"{i} containers: the run stops starting more")
                    print(f"scale: {self.m['stopped_early']}", file=sys.stderr)
                    break
            argv = [MINIRT, "run", "-d", "--name", name, "--net", NETWORK]
            argv += (["-p", f"{PORT_BASE + i}:80", "--", "httpd", "-f", "-p", "80", "-h", "/var/www"] if i in pub
                     else ["--", "sleep", "3600"])
            try:
                spawn = bench._now_ms()
                ms, p = self.sh(argv, env=self.env_timed)
                timed.append((name, spawn, bench._now_ms(), bench.parse_timing(p.stderr)))
            except bench.RunFailed as e:
                self.errors.append(f"run -d #{i}: {e}")
                self.in_flight = name  # it may have left its container
                break
            samples.append(ms)
            self.started.append(name)
            if (i + 1) % 100 == 0:
                print(f"scale: {i + 1} started, last {ms:.0f} ms, MemAvailable {mem_available_mib():.0f} MiB",
                      file=sys.stderr)
        self.m["start_total_s"] = time.perf_counter() - t0
        self.m["phases"] = phase_growth(self.phase_runs(timed))
        self.m["started"] = len(self.started)
        self.m["start_ms"] = samples
        if samples:
            self.m["start"] = {"p50": bench.percentile(samples, 50), "p90": bench.percentile(samples, 90),
                               "p99": bench.percentile(samples, 99), "min": min(samples), "max": max(samples)}
            self.m["start_by_decile"] = deciles(samples)
        self.m["memory"] = dict(memory(self.root), available_drop_mib=avail0 - mem_available_mib())
        self.m["idle"] = idle_activity(self.root, IDLE_S if not self.args.quick else 1.0)

    def phase_runs(self, timed: list[tuple]) -> list[dict[str, float]]:
        """The phases of each start in the first and last tenth (all of them below 20): the
        caller's marks and the supervisor's, which went to its log pipe, so container.log."""
        k = len(timed) // 10 if len(timed) >= 20 else len(timed)
        runs = []
        for name, spawn, end, marks in timed[:k] + (timed[-k:] if len(timed) >= 20 else []):
            marks = list(marks)
            try:
                with open(f"{self.root}/names/{name}") as f:
                    cid = f.read().strip()
                with open(f"{self.root}/containers/{cid}/container.log") as f:
                    for line in f:
                        text = json.loads(line).get("log", "")
                        if text.startswith("timing "):
                            marks += bench.parse_timing(text)
            except (OSError, ValueError):
                pass
            runs.append(bench.phases(marks, spawn, end))
        return runs

    def reachability(self):
        if len(self.started) < 2:
            return
        last = self.started[-1]
        alive = self.started[:-1]
        targets = [alive[i] for i in spread_sample(len(alive), SAMPLE)]
        ips = {name: (self.record(name).get("network") or {}).get("address", "") for name in targets}
        loop = " ".join(ips[name] for name in targets)
        # one echo request each; an unanswered one is tried once more (a single lost ICMP on a
        # loaded 2-core machine is not unreachability), and the retries are reported
        script = (f"for ip in {loop}; do if ping -c 1 -W 2 $ip >/dev/null 2>&1; then echo ok $ip; "
                  "elif ping -c 1 -W 3 $ip >/dev/null 2>&1; then echo ok $ip retried; "
                  "else echo fail $ip; fi; done")
        t0 = time.perf_counter()
        try:
            _, p = self.sh([MINIRT, "exec", last, "sh", "-c", script], timeout=300)
            ok = [x for x in p.stdout.splitlines() if x.startswith("ok ")]
            failed = [x.split()[1] for x in p.stdout.splitlines() if x.startswith("fail ")]
        except bench.RunFailed as e:
            ok, failed = [], [str(e)]
        self.m["ping"] = {"targets": targets, "ok": len(ok), "failed": failed, "seconds": time.perf_counter() - t0,
                          "retried": [x.split()[1] for x in ok if x.endswith(" retried")]}
        if failed or len(ok) != len(targets):
            self.errors.append(f"ping from {last}: {len(ok)}/{len(targets)} answered ({', '.join(failed[:5])})")
        ports = [PORT_BASE + i for i in self.published if f"s{i}" in self.started]
        t0 = time.perf_counter()
        _, p = self.sh([VPY, "-c", FETCH, *map(str, ports)], timeout=60 + 15 * len(ports), check=False)
        ok = [x for x in p.stdout.splitlines() if x.startswith("ok ")]
        failed = [x.split(None, 1)[1] for x in p.stdout.splitlines() if x.startswith("fail ")]
        self.m["fetch"] = {"targets": ports, "ok": len(ok), "failed": failed, "seconds": time.perf_counter() - t0}
        if len(ok) != len(ports):
            self.errors.append(f"published ports: {len(ok)}/{len(ports)} answered ({', '.join(failed[:5])})"
                               + (f"; {p.stderr.strip()[-200:]}" if p.returncode else ""))

    def commands(self):
        if not self.started:
            return
        one = self.started[len(self.started) // 2]
        cmds = {"ps": ["ps"], "ps -a --format json": ["ps", "-a", "--format", "json"],
                "inspect": ["inspect", one], "stats --no-stream": ["stats", "--no-stream"]}
        out = {}
        for key, argv in cmds.items():
            full = [MINIRT, *argv]
            shown = "minirt " + " ".join(argv)
            try:
                self.sh(full, timeout=300)  # warm-up: the page cache holds the records afterwards
                samples, lines = [], 0
                for _ in range(self.args.runs):
                    ms, p = self.sh(full, timeout=300)
                    samples.append(ms)
                    lines = len(p.stdout.splitlines())
                out[key] = {"argv": shown, "median": bench.percentile(samples, 50), "min": min(samples),
                            "max": max(samples), "samples": samples, "lines": lines}
            except bench.RunFailed as e:
                out[key] = {"argv": shown, "median": None, "error": str(e)}
                self.errors.append(f"{shown}: {e}")
        self.m["commands"] = out

    def remove_all(self):
        if not self.started:
            return
        t0 = time.perf_counter()
        try:
            self.sh([MINIRT, "rm", "-f", *self.started], timeout=600 + 2 * len(self.started))
            self.m["rm_s"] = time.perf_counter() - t0
        except bench.RunFailed as e:
            self.errors.append(f"rm -f of all: {e}")
        self.started = []

    def run(self) -> int:
        args = self.args
        started = datetime.datetime.now().astimezone()
        self.root = root = tempfile.mkdtemp(prefix="minirt-scale-", dir="/run")
        config, cg_parent = bench.setup_cgroup_parent(root)
        self.env = dict(os.environ, MINIRT_ROOT=root, MINIRT_CONFIG=config, MINIRT_STORE=os.path.join(root, "store"))
        self.env.pop("MINIRT_TIMING", None)
        self.env_timed = dict(self.env, MINIRT_TIMING="1")
        self.started, self.in_flight = [], None
        holder = bench.start_holder(root)
        cg_errors: list[str] = []
        try:
            self.inside = ["nsenter", "-t", str(holder.pid), "-n", "-m", "--"]
            self.holder_pid = holder.pid
            bench.setup_holder(holder.pid, root)
            self.sh([MINIRT, "network", "create", "--subnet", SUBNET, NETWORK])
            self.m["kernel_before"] = self.kernel()
            self.m["baseline_before"] = self.baseline()
            self.start_all()
            self.m["kernel"] = self.kernel()
            self.m["baseline_at_n"] = self.baseline()
            self.reachability()
            self.commands()
            self.remove_all()
            if self.in_flight:
                self.sh([MINIRT, "rm", "-f", self.in_flight], check=False)
                self.in_flight = None
            _, p = self.sh([MINIRT, "ps", "-aq"])
            after = self.kernel()
            after["records"] = len(p.stdout.split())
            self.m["kernel_after"] = after
            self.sh([MINIRT, "network", "rm", NETWORK])
            before = dict(self.m["kernel_before"], records=0)
            for what in ("veths", "nft_elements", "records"):
                if after.get(what) != before.get(what):
                    self.errors.append(f"after rm -f of all: {what} {after.get(what)}, "
                                       f"{before.get(what)} before the first container")
        except bench.RunFailed as e:
            self.errors.append(str(e))
        except KeyboardInterrupt:
            self.errors.append("interrupted")
        finally:
            leftover = self.started + ([self.in_flight] if self.in_flight else [])
            if leftover:  # a failure above: nothing may outlive the bench
                self.sh([MINIRT, "rm", "-f", *leftover], timeout=600 + 2 * len(leftover), check=False)
            holder.kill()
            holder.wait()
            cg_errors = bench.remove_cgroup_parent(cg_parent)
            self.errors.extend(cg_errors)
            import shutil

            shutil.rmtree(root, ignore_errors=True)
        u = os.uname()
        self.m["meta"] = {
            "date": started.isoformat(timespec="seconds"),
            "kernel": f"{u.sysname} {u.release}",
            "CPUs": f"{os.cpu_count()}; load average at the end {bench.loadavg()}",
            "memory": f"MemAvailable {mem_available_mib():.0f} MiB at the end",
            "python": platform.python_version(),
            "minirt": MINIRT,
            "method": (f"{args.count} x `minirt run -d --net {NETWORK}` one after the other ({len(self.published)} "
                       f"of them `-p {PORT_BASE}+i:80 -- httpd`, the rest `-- sleep 3600`), each timed by "
                       "perf_counter around subprocess.run of `nsenter -t <holder> -n -m -- minirt ...`, "
                       "in a throwaway host namespace, temp MINIRT_ROOT, cgroup parent "
                       f"{cg_parent} nested under the bench's own (removed at the end)"),
        }
        report = render(self.m)
        sys.stdout.write(report)
        if args.out:
            os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
            with open(args.out, "w") as f:
                f.write(report)
            base = os.path.splitext(os.path.abspath(args.out))[0]
            with open(base + ".json", "w") as f:
                json.dump(self.m, f, indent=1)
            sys.stdout.write(f"\n(written to {os.path.relpath(os.path.abspath(args.out))} and .json)\n")
            sys.stdout.write(write_chart(self.m, base + ".png") + "\n")
        return 1 if self.errors else 0


def docker_side(count: int, runs: int) -> dict:
    """The same steps with Docker 20.10 (Debian's docker.io) in `make compare`'s throwaway
    namespace (compare.Env: its own holder, data root, socket and cgroup parent; a wan namespace
    as uplink; stopped and removed after): N `docker run -d` on one user network, 50 with
    `-p 30000+i:80 -- httpd`, reachability, `ps`, `ps -a --format '{{json .}}'`, `inspect`,
    `stats --no-stream`, the PSS of Docker's processes, `rm -f` of all in one call."""
    sys.path.insert(0, REPO)
    from compare import compare as cmp

    if cmp.daemons_in_this_netns():
        bench.fail("--docker: a Docker daemon runs in the host's network namespace; stop it first")
    env = cmp.Env()
    m: dict = {"count": count, "errors": []}
    try:
        env.setup()
        env.start_dockerd()

        def docker(*args, timeout=START_TIMEOUT_S, check=True):
            t0 = time.perf_counter()
            p = env.docker(*args, timeout=timeout)
            ms = (time.perf_counter() - t0) * 1000
            if check and p.returncode != 0:
                raise bench.RunFailed(f"docker {' '.join(args[:4])}: {bench.first_error_line(p.stderr, p.returncode)}")
            return ms, p

        docker("network", "create", "--subnet", "10.124.0.0/20", NETWORK)
        published = set(spread_sample(count - 1, SAMPLE)) if count > 1 else set()
        samples, names = [], []
        t0 = time.perf_counter()
        for i in range(count):
            args = ["run", "-d", "--name", f"s{i}", "--net", NETWORK]
            args += (["-p", f"{PORT_BASE + i}:80", cmp.IMAGE, "httpd", "-f", "-p", "80", "-h", "/var/www"]
                     if i in published else [cmp.IMAGE, "sleep", "3600"])
            try:
                ms, _ = docker(*args)
            except (bench.RunFailed, subprocess.TimeoutExpired) as e:
                m["errors"].append(f"docker run -d #{i}: {e}")
                break
            samples.append(ms)
            names.append(f"s{i}")
            if (i + 1) % 50 == 0:
                print(f"scale: docker: {i + 1} started, last {ms:.0f} ms", file=sys.stderr)
        m["start_total_s"] = time.perf_counter() - t0
        m["started"] = len(names)
        m["start_ms"] = samples
        if samples:
            m["start"] = {"p50": bench.percentile(samples, 50), "p99": bench.percentile(samples, 99)}
        # Docker's own processes: dockerd, containerd and one containerd-shim per container
        pids = [int(d) for d in os.listdir("/proc") if d.isdigit() and _netns_of(d) == env.host.netns
                and _comm(d) in ("dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2",
                                 "docker-proxy")]  # fmt: skip
        pss = shim_pss = shims = 0
        for pid in pids:
            try:
                with open(f"/proc/{pid}/smaps_rollup") as f:
                    v = parse_smaps_rollup(f.read()).get("Pss", 0)
            except OSError:
                continue
            pss += v
            if _comm(str(pid)).startswith("containerd-shim"):
                shims += 1
                shim_pss += v
        m["memory"] = {"processes": len(pids), "pss_kib": pss, "shims": shims, "shim_pss_kib": shim_pss}
        if len(names) > 1:
            last, alive = names[-1], names[:-1]
            targets = [alive[i] for i in spread_sample(len(alive), SAMPLE)]
            _, p = docker("inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", *targets)
            script = (f"for ip in {' '.join(p.stdout.split())}; do if ping -c 1 -W 2 $ip >/dev/null 2>&1; "
                      "then echo ok; elif ping -c 1 -W 3 $ip >/dev/null 2>&1; then echo ok; else echo fail; fi; done")
            _, p = docker("exec", last, "sh", "-c", script, timeout=300, check=False)
            m["ping"] = f"{p.stdout.split().count('ok')}/{len(targets)}"
            ports = [PORT_BASE + i for i in sorted(published) if f"s{i}" in names]
            p = env.host.run(VPY, "-c", FETCH, *map(str, ports), check=False, timeout=60 + 15 * len(ports))
            m["fetch"] = f"{sum(1 for x in p.stdout.splitlines() if x.startswith('ok '))}/{len(ports)}"
        cmds = {"ps": ["ps"], "ps -a --format json": ["ps", "-a", "--format", "{{json .}}"],
                "inspect": ["inspect", names[len(names) // 2]] if names else None,
                "stats --no-stream": ["stats", "--no-stream"]}
        m["commands"] = {}
        for key, args in cmds.items():
            if not args:
                continue
            docker(*args, timeout=300)
            xs = [docker(*args, timeout=300)[0] for _ in range(runs)]
            m["commands"][key] = {"argv": "docker " + " ".join(args), "median": bench.percentile(xs, 50),
                                  "min": min(xs), "max": max(xs)}
        if names:
            t0 = time.perf_counter()
            docker("rm", "-f", *names, timeout=1200)
            m["rm_s"] = time.perf_counter() - t0
    except (bench.RunFailed, subprocess.SubprocessError, RuntimeError) as e:
        m["errors"].append(str(e))
    finally:
        for note in env.stop():
            print(f"scale: docker: {note}", file=sys.stderr)
    return m


def _netns_of(pid: str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return ""


def _comm(pid: str) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def render_docker(m: dict) -> str:
    """The Docker side-by-side section."""
    out = [f"## Docker 20.10 side by side: {m['count']} containers (make compare's throwaway namespace)", ""]
    st = m.get("start")
    if st:
        out.append(f"- start: {m['started']} in {m['start_total_s']:.1f} s; p50 {st['p50']:.1f} ms, "
                   f"p99 {st['p99']:.1f} ms ({st['p99'] / st['p50']:.2f}×)")
    if m.get("ping"):
        out.append(f"- reachability: ping {m['ping']}, published ports {m['fetch']}")
    for s in m.get("commands", {}).values():
        out.append(f"- `{s['argv']}`: median {s['median']:.1f} ms (min {s['min']:.1f}, max {s['max']:.1f})")
    mem = m.get("memory")
    if mem and m.get("started"):
        out.append(f"- Docker's processes in its namespace (dockerd, containerd, shims, proxies): {mem['processes']}, "
                   f"PSS {mem['pss_kib'] / 1024:.1f} MiB, {mem['pss_kib'] / 1024 / m['started']:.2f} MiB per container; "
                   f"of which {mem['shims']} containerd shims, {mem['shim_pss_kib'] / 1024 / max(mem['shims'], 1):.2f} "
                   "MiB PSS each")
    if m.get("rm_s") is not None:
        out.append(f"- `docker rm -f` of all in one call: {m['rm_s']:.1f} s")
    for e in m.get("errors", []):
        out.append(f"- error: {e}")
    return "\n".join(out) + "\n"


def bench_read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def write_chart(m: dict, path: str) -> str:
    """Start time of each container against its index (how the cost grows with the count), with
    a running median and the p50/p99 lines; log scale on the time axis."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except Exception as e:
        return f"chart skipped: {type(e).__name__}: {e}"
    xs = m.get("start_ms") or []
    if not xs:
        return "chart skipped: no container started"
    fig, ax = plt.subplots(figsize=(10, 5))
    idx = list(range(1, len(xs) + 1))
    ax.scatter(idx, xs, s=4, color="tab:blue", alpha=0.5, label="one `run -d` (ms)")
    w = max(1, len(xs) // 50)
    run_med = [bench.percentile(xs[max(0, i - w):i + w + 1], 50) for i in range(len(xs))]
    ax.plot(idx, run_med, color="tab:orange", label=f"running median (±{w})")
    st = m["start"]
    ax.axhline(st["p50"], color="gray", ls="--", lw=1, label=f"p50 {st['p50']:.0f} ms")
    ax.axhline(st["p99"], color="tab:red", ls=":", lw=1, label=f"p99 {st['p99']:.0f} ms")
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(bench.log_label))
    ax.yaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(bench.log_label))
    ax.tick_params(axis="y", which="minor", labelsize=7)
    ax.set_xlabel("containers running (index of the one being started)")
    ax.set_ylabel("start time ms (log)")
    ax.grid(which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    title = (f"minirt run -d on one network, {m['started']} containers one after the other: "
             f"{m['start_total_s']:.0f} s in all, {m['meta']['date']}, {os.cpu_count()} CPUs")
    ax.set_title(bench.wrap_title(title), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"chart written to {os.path.relpath(path)}"


def parse_args(argv, environ=os.environ):
    ap = argparse.ArgumentParser(prog="bench/scale.py", description="N detached containers on one network")
    ap.add_argument("--count", type=int, help="containers (default BENCH_SCALE or 200)")
    ap.add_argument("--runs", type=int, default=None, help=f"timed runs of each command at N (default {RUNS})")
    ap.add_argument("--out", help="write the report here (default bench/results/scale-N.md; none with --quick)")
    ap.add_argument("--quick", action="store_true", help="smoke mode: 1 run per command, write nothing by default")
    ap.add_argument("--docker", action="store_true",
                    help="only the Docker side-by-side (docker.io in make compare's throwaway namespace)")
    ap.add_argument("--replot", metavar="JSON", help="only draw the chart again from a scale-N.json (no root)")
    args = ap.parse_args(argv)
    if args.count is None:
        env = environ.get("BENCH_SCALE")
        try:
            args.count = int(env) if env else 200
        except ValueError:
            ap.error(f"BENCH_SCALE={env!r} is not an integer")
    if args.count < 1:
        ap.error("--count must be at least 1")
    if args.runs is None:
        args.runs = 1 if args.quick else RUNS
    if args.out is None and not args.quick:
        args.out = os.path.join(RESULTS_DIR, f"scale-{args.count}.md")
    return args


def main(argv=None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.replot:
        with open(args.replot) as f:
            print(write_chart(json.load(f), os.path.splitext(args.replot)[0] + ".png"))
        return 0
    if os.geteuid() != 0:
        bench.fail("must run as root (minirt creates namespaces)")
    for path in (VPY, MINIRT):
        if not os.access(path, os.X_OK):
            bench.fail(f"{path} is missing: run `make venv rootfs` first")
    if args.docker:
        m = docker_side(args.count, args.runs)
        text = render_docker(m)
        sys.stdout.write(text)
        if args.out:
            base = os.path.splitext(os.path.abspath(args.out))[0] + "-docker"
            os.makedirs(os.path.dirname(base), exist_ok=True)
            with open(base + ".md", "w") as f:
                f.write(text)
            with open(base + ".json", "w") as f:
                json.dump(m, f, indent=1)
            sys.stdout.write(f"\n(written to {os.path.relpath(base)}.md and .json)\n")
        return 1 if m["errors"] else 0
    print(bench.compile_bytecode(), file=sys.stderr)
    return Scale(args).run()


if __name__ == "__main__":
    sys.exit(main())
