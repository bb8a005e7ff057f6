#!/usr/bin/env python3
"""`make bench`: start-up latency of `minirt run` against `unshare` of the same namespaces, the
tutorial's steps as a script, and the OCI runtimes runc and crun, all in one run.

Every case runs N times (default 20; BENCH_RUNS or --runs overrides) after 3 warm-up rounds,
interleaved round-robin (the starting case rotates each round) so that noise hits all cases
alike. Each run is timed with time.perf_counter around subprocess.run. The minirt runs have
MINIRT_TIMING=1, and their "timing <monotonic ms> <pid> <step>" lines on stderr, together with
the CLOCK_MONOTONIC time the harness takes right before spawning, give the "where the time goes"
table. runc and crun share one OCI bundle (`runc spec`, /bin/true, the default rootfs
read-only); each is tried once first and, if it fails, listed as skipped with its first error
line (no work-around is applied). docker/podman rows say why they did not run (BENCH_PEERS).
Then, one after the other: N x `run --rm -- /bin/true`, N x (`run -d` + `rm -f`), the
published-ports costs (ports_bench.py) and `minirt stats --no-stream` with 50 running
containers (skipped with the reason when this minirt has no `stats`).

The `--net none` case runs three times in the round-robin: plain, with `--memory 64m --cpus 1
--pids-limit 100`, and with `--security-opt seccomp=unconfined`; the report gives the ratios of
their medians against issue 11's goal (limits ≤ 1.10) and issue 12's (default seccomp profile,
program cached by the warm-ups, ≤ 1.05 over unconfined). After the round-robin, a few default
runs each find the seccomp cache emptied (the cold path: libseccomp compiles), reported apart.
Every minirt container's cgroup goes under the relative cgroup parent minirt-bench-<pid> (a
$MINIRT_CONFIG file of the bench's), so nested under the bench's own cgroup in each hierarchy;
at the end that parent is removed everywhere, and a container cgroup left in it is an error line
in the report and exit status 1. Before anything is timed, `compileall -q` runs on the
installed package. The report (Markdown) is printed and written to bench/results/latest.md,
with a bar chart of the medians at bench/results/latest.png (matplotlib, a bench-only extra:
without it the chart is skipped with the reason).

Needs root (minirt and unshare create namespaces). Stdlib only, apart from the optional chart.
The parsing and formatting helpers are pure functions, unit-tested in
tests/unit/test_bench_format.py.

    bench/bench.py [--runs N] [--sequential N] [--throughput N] [--stats N] [--quick] [--out PATH]

--quick is a smoke mode: no warm-ups, 3 runs unless --runs says otherwise, 2 containers per
batch and for stats, minirt-only (runc/crun listed as skipped), and nothing is written unless --out is given
(so a smoke test does not overwrite latest.md).
"""

import argparse
import datetime
import glob
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(REPO, ".venv")
VPY = os.path.join(VENV, "bin", "python")
MINIRT = os.environ.get("MINIRT_BIN") or os.path.join(VENV, "bin", "minirt")
RESULTS = os.path.join(REPO, "bench", "results", "latest.md")

DEFAULT_RUNS = 20
WARMUPS = 3
GOAL_MS = 35.0
RUN_TIMEOUT_S = 60

NET_NONE = "minirt run --rm --net none -- /bin/true"
LIMITS = "minirt run --rm --net none --memory 64m --cpus 1 --pids-limit 100 -- /bin/true"
LIMITS_ARGS = ["--memory", "64m", "--cpus", "1", "--pids-limit", "100"]
LIMITS_GOAL = 1.10  # issue 11: the cgroup and its limits add at most 10% to the plain --net none run
USERNS = "minirt run --rm --net none --userns-remap default -- /bin/true"
USERNS_GOAL = 1.10  # issue 12: --userns-remap adds at most 10% to the plain --net none run
SECCOMP_OFF = "minirt run --rm --net none --security-opt seccomp=unconfined -- /bin/true"
SECCOMP_GOAL = 1.05  # issue 12: Docker's default profile attached adds at most 5% (program cached)
ROOTFS_DIR = "minirt run --rm --net none --rootfs DIR -- /bin/true"
IMAGE = "minirt run --rm --net none IMAGE /bin/true (3 layers, loaded)"
IMAGE_GOAL = 1.10  # issue 16: an image of 3 layers within 1.1x of the same root as --rootfs DIR
COLD_SECCOMP = 5  # runs of the default case, each after emptying $MINIRT_ROOT/seccomp
STATS = "minirt stats --no-stream"
STATS_GOAL_MS = 100.0  # issue 11: for 50 running containers
DEFAULT_STATS_CONTAINERS = 50
UNSHARE = "unshare --net --mount --pid --uts --ipc --fork /bin/true"
NET_HOST = "minirt run --rm --net host -- /bin/true"
BARE_PY = "python -S -c pass (venv python, reference)"
NET_BRIDGE = "minirt run --rm --net bridge -- /bin/true"
TUTORIAL = "tutorial script: ip netns + veth + bridge (bridge already up)"
NET_PUBLISH = "minirt run --rm -p 18080:80 -- /bin/true"
BRIDGE_GOAL_MS = 60.0
EXEC = "minirt exec <running container> /bin/true"
NSENTER = "nsenter -a -t <its init pid> /bin/true"
RUNC = "runc run (OCI bundle: runc spec, /bin/true, read-only rootfs)"
CRUN = "crun run (the same bundle)"
DOCKER = "docker run --rm --net none <rootfs image> /bin/true"
DOCKER_BRIDGE = "docker run --rm <rootfs image> /bin/true (bridge)"
DOCKER_PUBLISH = "docker run --rm -p 18081:80 <rootfs image> /bin/true"
PODMAN = "podman --runtime runc run --rm --net none <rootfs image> /bin/true"
OCI_PEERS = {"runc": RUNC, "crun": CRUN}
ENGINE_PEERS = {"docker": DOCKER, "podman": PODMAN}

# Each baseline or peer is compared with the minirt case that does the same work; the ratio
# column is minirt's median divided by the peer's ("minirt is N× the peer").
COMPARE = {
    UNSHARE: NET_NONE,
    BARE_PY: NET_NONE,
    RUNC: NET_NONE,
    CRUN: NET_NONE,
    DOCKER: NET_NONE,
    DOCKER_BRIDGE: NET_BRIDGE,
    DOCKER_PUBLISH: NET_PUBLISH,
    PODMAN: NET_NONE,
    TUTORIAL: NET_BRIDGE,
    NSENTER: EXEC,
}
SHORT = {NET_NONE: "run --net none", LIMITS: "run --net none + limits",
         USERNS: "run --net none + userns-remap", NET_BRIDGE: "run --net bridge",
         NET_PUBLISH: "run -p", EXEC: "exec", SECCOMP_OFF: "run --net none, seccomp unconfined",
         ROOTFS_DIR: "run --rootfs DIR", IMAGE: "run IMAGE (3 layers)"}

SPAWN = "spawn"  # the harness's own mark, taken right before subprocess.run
EXIT = "exit"  # the harness's mark right after subprocess.run returned (process reaped)

# What happens in a phase "prev→next" (runtime.py, process/spawn.py, process/init.py). The child's
# marks (child-imported, net-ready, pivoted, resolved, caps) interleave with the parent's, so a
# phase between a parent and a child mark is overlap, not a step of one process.
PHASE_LABELS = {
    "spawn→main": "interpreter start + cli import",
    "main→seccomp": "parse, config, imports; the seccomp program from the cache",
    "seccomp→fork": "runtime imports, container directory",
    "main→fork": "parse, config, imports of the runtime",
    "fork→recorded": "parent: fork the init, write the state record",
    "recorded→child-imported": "child: imports after fork (parent waits)",
    "fork→child-imported": "child: imports after fork",
    "child-imported→recorded": "parent: write the state record (child unshares)",
    "child-imported→ns-ready": "child: read host files, unshare; parent gets NS_READY",
    "recorded→ns-ready": "parent waits for NS_READY",
    "recorded→cgroup": "parent: start the sentinel; create the cgroup, write limits, move the init in",
    "cgroup→ns-ready": "parent waits for NS_READY",
    "ns-ready→net-ready": "parent sends NET_READY, child wakes",
    "net-ready→pivoted": "child: loopback up, overlay + /proc /sys /dev, pivot_root",
    "pivoted→resolved": "child: /etc files, hostname, workdir, resolve the command",
    "resolved→caps": "child: drop capabilities",
    "caps→exec-done": "child: close fds, EXEC, execve; parent sees EOF",
    "caps→seccomp-attached": "child: close fds, EXEC, attach the seccomp filter",
    "seccomp-attached→exec-done": "child: execve; parent sees EOF",
    "exec-done→exited": "parent: save 'running'; /bin/true runs and is reaped",
    "exited→torn-down": "parent: undo list, remove the record (--rm)",
    "torn-down→exit": "interpreter exit (os._exit) + reap by the harness",
}


# ---------------------------------------------------------------------------------------------
# Pure helpers (unit-tested; no root, no subprocesses)


def parse_timing(stderr_text: str) -> list[tuple[float, int, str]]:
    """The "timing <ms> <pid> <step>" lines of a stderr text as (ms, pid, step), in text order.
    Other lines are ignored; a line that starts with "timing " but is malformed raises ValueError."""
    marks = []
    for line in stderr_text.splitlines():
        if not line.startswith("timing "):
            continue
        parts = line.split()
        if len(parts) != 4:
            raise ValueError(f"malformed timing line: {line!r}")
        try:
            marks.append((float(parts[1]), int(parts[2]), parts[3]))
        except ValueError:
            raise ValueError(f"malformed timing line: {line!r}") from None
    return marks


def phases(marks, spawn_ms: float, end_ms: float | None = None) -> dict[str, float]:
    """Durations (ms) between consecutive marks of one run, keyed "prev→next", in time order.

    The harness's spawn time is the first mark ("spawn"); end_ms, if given, the last ("exit").
    Marks are sorted by time (parent and child marks interleave; CLOCK_MONOTONIC is system-wide,
    also across pid namespaces). A name that repeats within a run gets a "#2", "#3" suffix."""
    timeline = [(spawn_ms, SPAWN)] + sorted((ms, step) for ms, _pid, step in marks)
    if end_ms is not None:
        timeline.append((end_ms, EXIT))
    out: dict[str, float] = {}
    for (t0, a), (t1, b) in zip(timeline, timeline[1:]):
        name = f"{a}→{b}"
        key, n = name, 1
        while key in out:
            n += 1
            key = f"{name}#{n}"
        out[key] = t1 - t0
    return out


def offsets(marks, spawn_ms: float) -> dict[str, float]:
    """Time (ms) of each step since the harness spawned the process (first occurrence per step)."""
    out: dict[str, float] = {}
    for ms, _pid, step in sorted(marks):
        out.setdefault(step, ms - spawn_ms)
    return out


def percentile(samples, p: float) -> float:
    """The p-th percentile (0..100), linear interpolation between closest ranks (numpy default)."""
    xs = sorted(samples)
    if not xs:
        raise ValueError("percentile of no samples")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile {p} outside 0..100")
    k = (len(xs) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summarize(samples) -> dict:
    """median, p10, p90, min, max and n of a non-empty list of numbers."""
    xs = list(samples)
    if not xs:
        raise ValueError("summarize of no samples")
    return {
        "median": percentile(xs, 50),
        "p10": percentile(xs, 10),
        "p90": percentile(xs, 90),
        "min": min(xs),
        "max": max(xs),
        "n": len(xs),
    }


def phase_medians(runs: list[dict[str, float]]) -> tuple[list[tuple[str, dict]], dict[str, int]]:
    """Per phase name, the summary across runs, for the phases present in every run (in the
    order of their first appearance); and {name: count} of the phases missing from some run."""
    order: list[str] = []
    count: dict[str, int] = {}
    for run in runs:
        for name in run:
            if name not in count:
                order.append(name)
                count[name] = 0
            count[name] += 1
    common = [(name, summarize([run[name] for run in runs])) for name in order if count[name] == len(runs)]
    partial = {name: count[name] for name in order if count[name] < len(runs)}
    return common, partial


def fmt_ms(x: float) -> str:
    return f"{x:.1f}"


def render_table(rows: list[list], header: list[str], align: str | None = None) -> str:
    """A Markdown table. align: one character per column, "l" or "r" (default: first column
    left, the rest right). Cells are str()'d; "|" in a cell is escaped."""
    align = align or "l" + "r" * (len(header) - 1)
    if len(align) != len(header):
        raise ValueError("align must have one character per column")
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"row {row!r} has {len(row)} cells, header has {len(header)}")

    def cells(row):
        return [str(c).replace("|", "\\|") for c in row]

    body = [cells(header)] + [cells(r) for r in rows]
    widths = [max(len(r[i]) for r in body) for i in range(len(header))]

    def line(row):
        return "| " + " | ".join(c.ljust(w) if a == "l" else c.rjust(w) for c, w, a in zip(row, widths, align)) + " |"

    sep = "| " + " | ".join(("-" * (w - 1) + ":") if a == "r" else "-" * w for w, a in zip(widths, align)) + " |"
    return "\n".join([line(body[0]), sep] + [line(r) for r in body[1:]]) + "\n"


def ratio(minirt_samples, peer_samples) -> str:
    """minirt's median divided by the peer's, as "2.50×"; "n/a" when either side has no samples."""
    if not minirt_samples or not peer_samples:
        return "n/a"
    peer = summarize(peer_samples)["median"]
    if peer <= 0:
        return "n/a"
    return f"{summarize(minirt_samples)['median'] / peer:.2f}×"


def case_rows(results: dict[str, list[float]], compare: dict[str, str] | None = None,
              skipped: dict[str, str] | None = None) -> list[list]:
    """Rows of the main table: case, median, min, max, p10–p90, runs, the minirt case it is
    compared with and minirt's median ÷ this case's (for baselines and peers; blank for minirt's
    own cases). Then one row per skipped case: "skipped: <reason>" and blanks."""
    compare = COMPARE if compare is None else compare
    rows = []
    for name, samples in results.items():
        if not samples:
            continue
        s = summarize(samples)
        spread = f"{fmt_ms(s['p10'])}–{fmt_ms(s['p90'])}"
        mine = compare.get(name)
        vs = SHORT.get(mine, mine or "")
        r = ratio(results.get(mine), samples) if mine else ""
        rows.append([name, fmt_ms(s["median"]), fmt_ms(s["min"]), fmt_ms(s["max"]), spread, s["n"], vs, r, ""])
    rows += skipped_rows(skipped or {})
    return rows


def skipped_rows(skipped: dict[str, str]) -> list[list]:
    """One table row per case that could not run here: the reason in the median column."""
    return [[name, "skipped"] + [""] * (len(CASE_HEADER) - 3) + [f"skipped: {reason}"]
            for name, reason in skipped.items()]


def first_error_line(stderr: str, returncode: int) -> str:
    """The first non-blank line of a failed peer's stderr (its reason for being skipped), or the
    exit status when it printed nothing."""
    for line in stderr.splitlines():
        if line.strip():
            return line.strip()
    return f"exit status {returncode}, no message"


def oci_config(spec: dict, rootfs: str, args: list[str]) -> dict:
    """`runc spec`'s config with the bench's process and a read-only root at rootfs; everything
    else (namespaces, mounts, rlimits) as the spec has it."""
    cfg = json.loads(json.dumps(spec))
    cfg["process"]["args"] = list(args)
    cfg["process"]["terminal"] = False
    cfg["root"] = {"path": rootfs, "readonly": True}
    return cfg


def parse_peers(value: str | None) -> list[str]:
    """BENCH_PEERS ("docker,podman"): the engine peers asked for; an unknown name raises ValueError."""
    names = [n.strip() for n in (value or "").split(",") if n.strip()]
    bad = [n for n in names if n not in ENGINE_PEERS]
    if bad:
        raise ValueError(f"BENCH_PEERS: unknown peer(s) {', '.join(bad)} (known: {', '.join(ENGINE_PEERS)})")
    return names


def engine_skip_reasons(requested: list[str]) -> dict[str, str]:
    """Why each of docker/podman is not in the table: not asked for, or asked for but this harness
    does not drive an engine daemon yet."""
    out = {}
    for name, case in ENGINE_PEERS.items():
        if name in requested:
            continue  # measured (engine_podman)
        else:
            out[case] = "set BENCH_PEERS=docker,podman"
    return out


SEQ_RM = "minirt run --rm -- /bin/true (bridge), one after the other"
THROUGHPUT = "minirt run -d -- sleep 60, then rm -f (bridge), one after the other"
BATCH_HEADER = ["batch", "containers", "total s", "mean ms per container", "median ms", "min ms", "max ms"]


def batch_rows(batches: dict[str, list[float]]) -> list[list]:
    """Rows of the sequential-batch table: per batch (ms per container, in order), the count,
    the total in seconds, the mean, median, min and max per container."""
    rows = []
    for name, samples in batches.items():
        if not samples:
            continue
        s = summarize(samples)
        total = sum(samples)
        rows.append([name, s["n"], f"{total / 1000:.2f}", fmt_ms(total / s["n"]), fmt_ms(s["median"]),
                     fmt_ms(s["min"]), fmt_ms(s["max"])])
    return rows


CASE_HEADER = ["case", "median ms", "min ms", "max ms", "p10–p90 ms", "runs", "compared with minirt",
               "minirt ÷ case (medians)", "note"]
PHASE_HEADER = ["phase", "what", "median ms", "p10–p90 ms", "ends at (median ms since spawn)"]


def phase_rows(runs: list[dict[str, float]],
               ends: dict[str, float] | None = None) -> tuple[list[list[str]], dict[str, int]]:
    """Rows of the "where the time goes" table (phases present in every run) and the partial ones.
    ends: median offset since spawn of each step, shown for the phase's end mark."""
    common, partial = phase_medians(runs)
    rows = []
    for name, s in common:
        end_step = name.split("→", 1)[1].split("#", 1)[0]
        at = (ends or {}).get(end_step)
        rows.append([name, PHASE_LABELS.get(name, ""), fmt_ms(s["median"]), f"{fmt_ms(s['p10'])}–{fmt_ms(s['p90'])}",
                     "" if at is None else fmt_ms(at)])
    return rows, partial


def goal_line(median_ms: float, goal_ms: float = GOAL_MS) -> str:
    verdict = "met" if median_ms <= goal_ms else "missed"
    return f"goal: minirt --net none median ≤ {goal_ms:g} ms: {verdict} ({fmt_ms(median_ms)} ms)"


def ratio_line(what: str, base, case, goal: float) -> str | None:
    """A goal line: the case's median over the base case's (the same round-robin); None when
    either has no samples."""
    if not base or not case:
        return None
    b, c = summarize(base)["median"], summarize(case)["median"]
    r = c / b
    verdict = "met" if r <= goal else "missed"
    return f"goal: {what} medians ≤ {goal:.2f}: {verdict} ({r:.3f}: {fmt_ms(c)} ms vs {fmt_ms(b)} ms)"


def limits_line(plain, limits, goal: float = LIMITS_GOAL) -> str | None:
    return ratio_line("cgroup + limits (--memory 64m --cpus 1 --pids-limit 100) ÷ plain --net none", plain, limits,
                      goal)  # fmt: skip


def userns_line(plain, remapped, goal: float = USERNS_GOAL) -> str | None:
    return ratio_line("--userns-remap default ÷ plain --net none", plain, remapped, goal)


def seccomp_line(default, unconfined, goal: float = SECCOMP_GOAL) -> str | None:
    """Docker's profile attached (program cached) over seccomp=unconfined."""
    return ratio_line("seccomp default profile (cache warm) ÷ seccomp=unconfined", unconfined, default, goal)


def image_line(rootfs_dir, image, goal: float = IMAGE_GOAL) -> str | None:
    return ratio_line("run IMAGE (the rootfs + 2 layers) ÷ run --rootfs DIR", rootfs_dir, image, goal)


def bench_image(rootfs: str, path: str) -> str:
    """A `docker save` archive of the rootfs plus two small layers (a file, then a whiteout of
    another), for the IMAGE case; written with tarfile, loaded with `minirt load`."""
    import hashlib
    import io
    import tarfile

    def tar_of(fill) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
            fill(t)
        return buf.getvalue()

    def add(t, name: str, data: bytes = b"") -> None:
        ti = tarfile.TarInfo(name)
        ti.size, ti.mode = len(data), 0o644
        t.addfile(ti, io.BytesIO(data))

    layers = [tar_of(lambda t: t.add(rootfs, arcname=".")),
              tar_of(lambda t: (add(t, "bench/a", b"a\n"), add(t, "bench/b", b"b\n"))),
              tar_of(lambda t: add(t, "bench/.wh.b"))]  # fmt: skip
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["/bin/true"]},
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(x).hexdigest()
                                                                   for x in layers]}}).encode()  # fmt: skip
    with tarfile.open(path, "w") as t:
        add(t, "config.json", config)
        for i, x in enumerate(layers):
            add(t, f"{i}/layer.tar", x)
        add(t, "manifest.json", json.dumps([{"Config": "config.json", "RepoTags": ["bench/image:3"],
                                             "Layers": [f"{i}/layer.tar" for i in range(3)]}]).encode())
    return "bench/image:3"


def cold_seccomp_line(cold, warm) -> str | None:
    """The default run with an empty program cache (compiled with libseccomp, then cached),
    reported beside the warm median; None without samples."""
    if not cold or not warm:
        return None
    c, w = summarize(cold), summarize(warm)["median"]
    return (f"seccomp cold cache (first run after a profile or capability change; {c['n']} runs, each after "
            f"emptying $MINIRT_ROOT/seccomp): median {fmt_ms(c['median'])} ms (min {fmt_ms(c['min'])}, "
            f"max {fmt_ms(c['max'])}), {c['median'] - w:+.1f} ms over the warm {fmt_ms(w)} ms")


def stats_section(containers: int, samples: list[float] | None, skip_reason: str | None = None,
                  goal_ms: float = STATS_GOAL_MS) -> str:
    """The `minirt stats --no-stream` section: median and p90 of the timed runs with N running
    containers against the goal, or one line saying why it did not run."""
    out = [f"## {STATS} with {containers} running containers (--net none, sleep 600)", ""]
    if skip_reason is not None:
        out.append(f"skipped: {skip_reason}")
    elif not samples:
        out.append("skipped: no timed run")
    else:
        s = summarize(samples)
        verdict = "met" if s["median"] <= goal_ms else "missed"
        out.append(f"{STATS}: median {fmt_ms(s['median'])} ms, p90 {fmt_ms(s['p90'])} ms, "
                   f"min {fmt_ms(s['min'])}, max {fmt_ms(s['max'])} ({s['n']} runs)")
        out.append(f"goal: stats --no-stream median ≤ {goal_ms:g} ms with {containers} containers: {verdict}")
    return "\n".join(out) + "\n"


def cgroup_parent_dirs(parent: str, mountinfo: str, proc_cgroup: str) -> list[str]:
    """The directory of a relative cgroup parent in every cgroup hierarchy mounted (mountinfo's
    text), under this process's own cgroup there (/proc/self/cgroup's text): runc's rule for a
    relative parent, the one minirt follows (minirt/cgroups/layout.py). Co-mounted controllers
    give one directory; named v1 hierarchies (name=systemd) are included, harmless if unused."""
    if parent.startswith("/") or ".." in parent.split("/"):
        raise ValueError(f"cgroup parent {parent!r}: must be relative, without '..'")
    own: dict[str, str] = {}
    for line in proc_cgroup.splitlines():
        if line.strip():
            _, ctls, path = line.split(":", 2)
            for c in ctls.split(","):
                own[c] = path
    out: list[str] = []
    for line in mountinfo.splitlines():
        pre, _, post = line.partition(" - ")
        fields = post.split()
        if not fields or fields[0] not in ("cgroup", "cgroup2"):
            continue
        point = pre.split()[4]
        if fields[0] == "cgroup2":
            base = own.get("", "/")
        else:
            keys = [o for o in fields[2].split(",") if o in own]
            if not keys:
                continue
            base = own[keys[0]]
        d = os.path.normpath(f"{point}/{base.strip('/')}/{parent}")
        if d not in out:
            out.append(d)
    return out


def cgroup_error_lines(leftover: list[str], unremoved: list[str]) -> list[str]:
    """The report's error lines for the bench's cgroup parent: container cgroups found in it (a
    leak: minirt's teardown should have removed them) and directories that could not be removed."""
    return ([f"error: container cgroup left behind in the bench's cgroup parent: {d}" for d in leftover]
            + [f"error: could not remove the bench's cgroup directory {d}: {why}" for d, why in unremoved])


COLD_KEY = "_seccomp_cold"  # results[COLD_KEY]: the cold-cache samples (a line, not a table row)


def render_report(meta: dict, results: dict[str, list[float]], phase_runs: list[dict[str, float]],
                  ends: dict[str, float], skipped: dict[str, str] | None = None, header: str = "") -> str:
    """The whole Markdown report."""
    out = ["# minirt start-up benchmark", ""]
    if header:
        out += [header, ""]
    out += [f"- {k}: {v}" for k, v in meta.items()]
    rows = case_rows({k: v for k, v in results.items() if k != COLD_KEY}, skipped=skipped)
    out += ["", render_table(rows, CASE_HEADER, "lrrrrrlrl")]
    if results.get(NET_NONE):
        out.append(goal_line(summarize(results[NET_NONE])["median"]))
    limits = limits_line(results.get(NET_NONE), results.get(LIMITS))
    if limits:
        out.append(limits)
    remapped = userns_line(results.get(NET_NONE), results.get(USERNS))
    if remapped:
        out.append(remapped)
    for line in (seccomp_line(results.get(NET_NONE), results.get(SECCOMP_OFF)),
                 cold_seccomp_line(results.get(COLD_KEY), results.get(NET_NONE)),
                 image_line(results.get(ROOTFS_DIR), results.get(IMAGE))):
        if line:
            out.append(line)
    if results.get(NET_BRIDGE) and results.get(TUTORIAL):
        b, t = summarize(results[NET_BRIDGE])["median"], summarize(results[TUTORIAL])["median"]
        verdict = "met" if b <= BRIDGE_GOAL_MS else "missed"
        out.append(f"goal: minirt --net bridge median ≤ {BRIDGE_GOAL_MS:g} ms: {verdict} ({fmt_ms(b)} ms); "
                   f"vs the tutorial script {fmt_ms(t)} ms: {b / t:.2f}×")
        out.append("(bridge and tutorial cases run inside a throwaway network namespace via nsenter, which "
                   "adds the same ~1 ms to both)")
    out.append("")
    if phase_runs:
        rows, partial = phase_rows(phase_runs, ends)
        total = summarize([sum(r.values()) for r in phase_runs])
        out += [f"## where the time goes: {NET_NONE}", ""]
        out.append("Phases between consecutive timing marks, sorted by time (parent and container-init marks "
                   "interleave); median across runs per phase, so the medians need not add up to the total.")
        out += ["", render_table(rows, PHASE_HEADER, "llrrr")]
        out.append(f"total spawn→exit: median {fmt_ms(total['median'])} ms "
                   f"(p10–p90 {fmt_ms(total['p10'])}–{fmt_ms(total['p90'])})")
        if ends:
            out.append("")
            out.append("median ms since spawn of each mark: "
                       + ", ".join(f"{step} {fmt_ms(at)}" for step, at in sorted(ends.items(), key=lambda kv: kv[1])))
        if partial:
            out.append("")
            out.append("phases not in every run (the order of parent and child marks varies), left out: "
                       + ", ".join(f"{name} ({n}/{len(phase_runs)})" for name, n in partial.items()))
        out.append("")
    return "\n".join(out)


def chart_data(results: dict[str, list[float]]) -> list[tuple[str, float, float, float, bool]]:
    """(label, median, min, max, is_minirt) per measured case, in table order, for the chart."""
    out = []
    for name, samples in results.items():
        if samples and name != COLD_KEY:
            s = summarize(samples)
            out.append((name, s["median"], s["min"], s["max"], name.startswith("minirt ")))
    return out


def log_label(v: float, _pos=None) -> str:
    """A tick label on a log axis: plain numbers ("30", not "3×10¹"), and only at 1, 2, 3 and 5
    times a power of ten, so the minor ticks stay readable."""
    if v <= 0:
        return ""
    mantissa = v / 10 ** math.floor(math.log10(v) + 1e-9)
    return f"{v:g}" if any(abs(mantissa - m) < 1e-6 for m in (1, 2, 3, 5)) else ""


def wrap_title(title: str, width: int = 90) -> str:
    """A chart title broken into lines of at most `width` characters (never cut off)."""
    import textwrap

    return "\n".join(textwrap.wrap(title, width)) or title


def write_chart(results: dict[str, list[float]], path: str, title: str) -> str:
    """A PNG bar chart of the medians (whiskers: min and max) at path. matplotlib is a bench-only
    extra: when it cannot be imported, nothing is written and the reason is returned."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except Exception as e:  # ImportError, or a broken install
        return f"chart skipped: {type(e).__name__}: {e}"
    data = chart_data(results)
    if not data:
        return "chart skipped: no measured case"
    labels = [d[0] if len(d[0]) <= 60 else d[0][:57] + "..." for d in data]
    med = [d[1] for d in data]
    err = [[d[1] - d[2] for d in data], [d[3] - d[1] for d in data]]
    colors = ["tab:blue" if d[4] else "tab:gray" for d in data]
    fig, ax = plt.subplots(figsize=(10, 0.45 * len(data) + 1.8))
    ys = range(len(data))
    # a log scale: the cases run from ~3 ms (python -S) to ~500 ms (docker run), and on a linear
    # axis the fast ones are slivers; bars start at the axis' floor, below the fastest min
    lo = min(d[2] for d in data if d[2] > 0) / 2 if any(d[2] > 0 for d in data) else 0.1
    ax.set_xscale("log")
    ax.barh(ys, [m - lo for m in med], left=lo, xerr=err, color=colors, capsize=3, ecolor="black")
    ax.set_yticks(list(ys), labels, fontsize=8)
    ax.invert_yaxis()
    for y, d in zip(ys, data):  # the median's value, right of the max whisker
        ax.text(d[3], y, f"  {d[1]:.1f}", va="center", ha="left", fontsize=8)
    ax.set_xlim(lo, max(d[3] for d in data) * 2.5)
    ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(log_label))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.FuncFormatter(log_label))
    ax.tick_params(axis="x", which="minor", labelsize=7)
    ax.grid(axis="x", which="both", alpha=0.3)
    ax.set_xlabel("median ms, log scale (whiskers: min–max); blue: minirt, grey: baselines and peers")
    # wrapped to the figure's width, and tight_layout then makes room for every line of it
    ax.set_title(wrap_title(title, 70), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return f"chart written to {os.path.relpath(path)}"


def parse_args(argv: list[str], environ=os.environ) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="bench/bench.py", description="start-up latency of minirt vs unshare")
    ap.add_argument("--runs", type=int, help=f"measured runs per case (default BENCH_RUNS or {DEFAULT_RUNS})")
    ap.add_argument("--throughput", type=int, default=None,
                    help="containers for the run -d + rm -f throughput (default 100; 2 with --quick)")
    ap.add_argument("--sequential", type=int, default=None,
                    help="containers for the sequential run --rm -- true batch (default 100; 2 with --quick)")
    ap.add_argument("--stats", type=int, default=None,
                    help=f"running containers for the stats --no-stream section "
                         f"(default {DEFAULT_STATS_CONTAINERS}; 2 with --quick)")
    ap.add_argument("--quick", action="store_true",
                    help="smoke mode: no warm-ups, 3 runs, write nothing by default")
    ap.add_argument("--out",
                    help=f"write the report here (default {os.path.relpath(RESULTS, REPO)}; none with --quick)")
    args = ap.parse_args(argv)
    if args.runs is None:
        env = environ.get("BENCH_RUNS")
        if env:
            try:
                args.runs = int(env)
            except ValueError:
                ap.error(f"BENCH_RUNS={env!r} is not an integer")
        else:
            args.runs = 3 if args.quick else DEFAULT_RUNS
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    try:
        args.peers = parse_peers(environ.get("BENCH_PEERS"))
    except ValueError as e:
        ap.error(str(e))
    args.warmups = 0 if args.quick else WARMUPS
    if args.throughput is None:
        args.throughput = 2 if args.quick else 100
    if args.sequential is None:
        args.sequential = 2 if args.quick else 100
    if args.stats is None:
        args.stats = 2 if args.quick else DEFAULT_STATS_CONTAINERS
    if args.out is None and not args.quick:
        args.out = RESULTS
    return args


# ---------------------------------------------------------------------------------------------
# Measurement (root)


class RunFailed(Exception):
    pass


def _now_ms() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC) * 1000


def run_once(argv: list[str], env: dict) -> tuple[float, float, float, str]:
    """(wall ms by perf_counter, spawn ms and end ms by CLOCK_MONOTONIC, stderr) of one run.
    argv may be a callable that returns it (a fresh container name per run)."""
    if callable(argv):
        argv = argv()
    spawn_ms = _now_ms()
    t0 = time.perf_counter()
    try:
        p = subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, capture_output=True, close_fds=True,
                           timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired as e:  # subprocess.run has killed and reaped it
        raise RunFailed(f"{' '.join(argv)}: timed out after {RUN_TIMEOUT_S} s\n"
                        f"{(e.stderr or b'').decode(errors='replace')}") from None
    t1 = time.perf_counter()
    end_ms = _now_ms()
    err = p.stderr.decode(errors="replace")
    if p.returncode != 0:
        raise RunFailed(f"{' '.join(argv)}: exit status {p.returncode}\n--- stderr ---\n{err}"
                        f"--- stdout ---\n{p.stdout.decode(errors='replace')}")
    return (t1 - t0) * 1000, spawn_ms, end_ms, err


def installed_package() -> str | None:
    pkgs = glob.glob(os.path.join(VENV, "lib", "python3*", "site-packages", "minirt"))
    return pkgs[0] if pkgs and os.path.isdir(pkgs[0]) else None


def compile_bytecode() -> str:
    """`python -m compileall -q` on the installed minirt package, before anything is timed (the
    environment sets PYTHONDONTWRITEBYTECODE, so imports alone never write the cache)."""
    pkg = installed_package()
    if not pkg:
        return "compileall not run: minirt is not installed as a package in .venv"
    p = subprocess.run([VPY, "-m", "compileall", "-q", pkg], capture_output=True, text=True)
    if p.returncode != 0:
        return f"compileall -q FAILED (exit {p.returncode}): {first_error_line(p.stdout + p.stderr, p.returncode)}"
    return "compileall -q run on the installed package before timing"


def header_line(bytecode: str, cpus: int | None, kernel: str, load: str) -> str:
    """The one-line summary at the top of the report."""
    return f"**{bytecode}** · CPUs: {cpus} · kernel: {kernel} · load average at start (1/5/15 min): {load}"


def bytecode_state() -> str:
    """Whether the installed (non-editable) minirt package has cached bytecode for its modules."""
    pkg = installed_package()
    if not pkg:
        return "minirt NOT installed as a package in .venv (editable?): bytecode state unknown"
    sources = glob.glob(os.path.join(pkg, "**", "*.py"), recursive=True)
    def compiled(src: str) -> bool:  # any interpreter tag: the harness may not run under the venv's python
        d, f = os.path.split(src)
        return bool(glob.glob(os.path.join(d, "__pycache__", f[:-3] + ".*.pyc")))

    missing = [s for s in sources if not compiled(s)]
    if missing:
        return f"bytecode MISSING for {len(missing)}/{len(sources)} modules of the installed package"
    return "bytecode compiled (installed, non-editable package)"


def oci_peers(root: str, rootfs: str, env: dict, quick: bool) -> tuple[list, dict[str, str], list[str]]:
    """The runc/crun cases that run here, the skipped ones with their reason, and the state
    directories to clean up. One OCI bundle (runc spec + oci_config) under root serves both; each
    peer is tried once first, and its first error line is the reason when it fails (crun 1.8
    refuses hybrid cgroups: no cgroup work-around is applied). The containers get the spec's own
    new namespaces (pid, net, ipc, uts, mount): nothing is created in the host's netns."""
    cases, skipped, states = [], {}, []
    if quick:
        return cases, {case: "--quick (minirt-only smoke run)" for case in OCI_PEERS.values()}, states
    runc = shutil.which("runc")
    if not runc:
        return cases, {case: "runc not installed (`make bench` installs runc and crun)"
                       for case in OCI_PEERS.values()}, states  # fmt: skip
    bundle = os.path.join(root, "oci-bundle")
    os.makedirs(bundle)
    subprocess.run([runc, "spec"], cwd=bundle, check=True)
    with open(os.path.join(bundle, "config.json")) as f:
        spec = json.load(f)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(oci_config(spec, rootfs, ["/bin/true"]), f, indent=2)
    for peer, case in OCI_PEERS.items():
        exe = shutil.which(peer)
        if not exe:
            skipped[case] = f"{peer} not installed (`make bench` installs it)"
            continue
        state = os.path.join(root, f"{peer}-state")
        states.append((exe, state))
        counter = iter(range(1, 1 << 30))

        def argv(exe=exe, state=state, peer=peer, counter=counter):
            return [exe, "--root", state, "run", "--bundle", bundle, f"bench-{peer}-{next(counter)}"]

        p = subprocess.run(argv(), env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=RUN_TIMEOUT_S)  # fmt: skip
        if p.returncode != 0:
            skipped[case] = f"{peer} {version_of(exe)}: {first_error_line(p.stderr, p.returncode)}"
            continue
        cases.append((case, argv, env))
    return cases, skipped, states


def engine_docker():
    """Debian's dockerd, started in make compare's throwaway namespace (compare/compare.py Env:
    its own data/exec roots and socket, tmpfs over Docker's default paths, a wan namespace as
    its uplink), with the default rootfs imported as an image; stopped in main's finally."""
    sys.path.insert(0, REPO)
    from compare import compare as cmp

    if not os.access(cmp.DOCKER, os.X_OK):
        fail("BENCH_PEERS=docker: docker.io is not installed (`BENCH_PEERS=docker make bench` installs it)")
    if cmp.daemons_in_this_netns():
        fail("BENCH_PEERS=docker: a Docker daemon runs in the host's network namespace; stop it first")
    env = cmp.Env()
    try:
        env.setup()
        env.start_dockerd()
    except BaseException:
        env.stop()
        raise
    docker = [*env.host.prefix(), cmp.DOCKER, "-H", env.sock, "run", "--rm"]
    plain = dict(os.environ)
    cases = [(DOCKER, docker + ["--net", "none", cmp.IMAGE, "/bin/true"], plain),
             (DOCKER_BRIDGE, docker + [cmp.IMAGE, "/bin/true"], plain),
             (DOCKER_PUBLISH, docker + ["-p", "18081:80", cmp.IMAGE, "/bin/true"], plain)]
    return env, cases


def engine_podman(root: str):
    """Debian's podman 4.3 with --net none only (its bridge is CNI's, programmed in the host's
    namespace, which the bench never touches), storage under the bench's temp root, cgroups under
    a parent of our own, the rlimits this VM needs (docs/performance.md, "Peers on this machine")."""
    exe = shutil.which("podman")
    if not exe:
        fail("BENCH_PEERS=podman: podman is not installed (`BENCH_PEERS=podman make bench` installs it)")
    cache = "/var/lib/containers"  # podman's blob-info cache lands there whatever --root says
    had_cache = os.path.exists(cache)
    parent = os.path.basename(root)
    base = [exe, "--root", f"{root}/podman-root", "--runroot", f"{root}/podman-run", "--cgroup-manager",
            "cgroupfs", "--events-backend", "file", "--runtime", "runc", "--storage-driver", "overlay"]
    state = (base, parent, cache, had_cache)
    rootfs = os.path.realpath(os.path.join(VENV, "share", "minirt", "rootfs"))
    try:
        subprocess.run(f"tar -C {rootfs} -c . | {' '.join(base)} import - minirt-bb", shell=True, check=True,
                       capture_output=True, timeout=120)  # fmt: skip
    except subprocess.SubprocessError as e:
        cleanup_podman(*state)
        fail(f"BENCH_PEERS=podman: importing the rootfs failed: {e}")
    argv = base + ["run", "--rm", "--net", "none", "--cgroup-parent", f"/{parent}", "--ulimit",
                   "nofile=20000:20000", "--ulimit", "nproc=32768:32768", "localhost/minirt-bb", "/bin/true"]
    return state, [(PODMAN, argv, dict(os.environ))]


def cleanup_podman(base: list, parent: str, cache: str, had_cache: bool) -> None:
    """Remove podman's containers, images and storage mounts, its cgroups, and the cache
    directory it created."""
    subprocess.run(base + ["system", "reset", "-f"], capture_output=True, timeout=120)
    for top in glob.glob(f"/sys/fs/cgroup/*/{parent}") + glob.glob("/sys/fs/cgroup/*/libpod_parent"):
        for d, _, _ in sorted(os.walk(top), key=lambda x: -len(x[0])):
            try:
                os.rmdir(d)
            except OSError:
                pass
    if not had_cache:
        shutil.rmtree(cache, ignore_errors=True)


def version_of(exe: str) -> str:
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return "(version unknown)"
    words = out.split()
    return words[2] if len(words) > 2 and words[1] == "version" else "(version unknown)"


# crun 1.8 makes /run/crun (its lock directory) even when given --root and refusing to run:
# removed again at the end when the bench made it and it is empty, so the host keeps no trace
OCI_RUN_DIRS = ("/run/crun", "/run/runc")
_oci_run_dirs_before = {d for d in OCI_RUN_DIRS if os.path.exists(d)}


def cleanup_oci(states) -> None:
    """Delete any container a failed run left in the runc/crun state directories, and the
    runtimes' own /run directories the bench's runs created."""
    for exe, state in states:
        if not os.path.isdir(state):
            continue
        ids = subprocess.run([exe, "--root", state, "list", "-q"], capture_output=True, text=True).stdout.split()
        for cid in ids:
            subprocess.run([exe, "--root", state, "delete", "-f", cid], capture_output=True)
    for d in OCI_RUN_DIRS:
        if d not in _oci_run_dirs_before:
            try:
                os.rmdir(d)  # only when empty: anything in it is someone else's
            except OSError:
                pass


def setup_cgroup_parent(root: str) -> tuple[str, str]:
    """A $MINIRT_CONFIG file under root that puts every container's cgroup under
    minirt-bench-<pid>, relative, so nested under the bench's own cgroup in each hierarchy (not at
    a hierarchy's root, where the default /minirt is: the host keeps no trace, and the containers'
    memory stays accounted to the bench's own cgroup). Returns (config path, parent)."""
    parent = f"minirt-bench-{os.getpid()}"
    path = os.path.join(root, "config.json")
    # --userns-remap default takes its range from subuid/subgid files of the bench's own (empty
    # at first: the first warm-up run adds the `minirt` entry), never the host's /etc files
    with open(path, "w") as f:
        json.dump({"cgroup_parent": parent, "subuid_file": os.path.join(root, "subuid"),
                   "subgid_file": os.path.join(root, "subgid")}, f)
    return path, parent


def remove_cgroup_parent(parent: str, timeout: float = 5.0) -> list[str]:
    """rmdir the bench's cgroup parent in every hierarchy, deepest first. It should be empty:
    each container cgroup still in it is a leak and becomes an error line (removed too when it has
    no task left), as does a directory that cannot be removed. Processes are never killed here."""
    with open("/proc/self/mountinfo") as f:
        mountinfo = f.read()
    with open("/proc/self/cgroup") as f:
        own = f.read()
    leftover: list[str] = []
    unremoved: list[tuple[str, str]] = []
    for top in cgroup_parent_dirs(parent, mountinfo, own):
        if not os.path.isdir(top):
            continue
        for d, _, _ in sorted(os.walk(top), key=lambda x: -x[0].count("/")):
            if d != top:
                leftover.append(d)
            # a cgroup whose last task is still exiting refuses rmdir for a moment (EBUSY)
            deadline = time.monotonic() + timeout
            while True:
                try:
                    os.rmdir(d)
                    break
                except FileNotFoundError:
                    break
                except OSError as e:
                    if time.monotonic() > deadline:
                        unremoved.append((d, e.strerror or str(e)))
                        break
                    time.sleep(0.05)
    return cgroup_error_lines(leftover, unremoved)


def stats_bench(env: dict, containers: int, runs: int, warmups: int) -> tuple[list[float] | None, str | None]:
    """Time `minirt stats --no-stream` with `containers` detached --net none containers running:
    (samples, None), or (None, why it was skipped). The containers are always removed."""
    try:
        p = subprocess.run([MINIRT, "stats", "--help"], env=env, stdin=subprocess.DEVNULL, capture_output=True,
                           text=True, timeout=RUN_TIMEOUT_S)  # fmt: skip
    except subprocess.TimeoutExpired:
        return None, f"`minirt stats --help` timed out after {RUN_TIMEOUT_S} s"
    if p.returncode != 0:
        return None, (f"`minirt stats --help` exited {p.returncode} (not a known command here): "
                      f"{first_error_line(p.stderr, p.returncode)}")
    names = [f"bstats{i}" for i in range(containers)]
    started: list[str] = []
    try:
        for name in names:
            run_once([MINIRT, "run", "-d", "--name", name, "--net", "none", "--", "sleep", "600"], env)
            started.append(name)
        for _ in range(warmups):
            run_once([MINIRT, "stats", "--no-stream"], env)
        return [run_once([MINIRT, "stats", "--no-stream"], env)[0] for _ in range(runs)], None
    finally:
        # rm stops at the first name it does not know, so the started ones go in one call and the
        # one in flight when a run -d failed (it may have left its container) in a call of its own
        rm = [MINIRT, "rm", "-f"]
        for batch in ([started] if started else []) + [names[len(started):len(started) + 1]]:
            if batch:
                subprocess.run(rm + batch, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                               timeout=RUN_TIMEOUT_S + 5 * len(batch))  # fmt: skip



def start_holder(root: str) -> subprocess.Popen:
    """A throwaway host namespace (network + mount, private propagation) held by a `sleep`; the
    caller kills it. Returns once its network namespace differs from ours."""
    holder = subprocess.Popen(["unshare", "--net", "--mount", "--propagation", "private", "--", "sleep", "3600"],
                              stdin=subprocess.DEVNULL)
    own_ns = os.readlink("/proc/self/ns/net")
    deadline = time.monotonic() + 10
    while os.readlink(f"/proc/{holder.pid}/ns/net") == own_ns:
        if time.monotonic() > deadline:
            holder.kill()
            holder.wait()
            fail("the bench's holder namespace never appeared")
        time.sleep(0.005)
    return holder


def setup_holder(pid: int, root: str, extra: list[list[str]] = ()) -> None:
    """Make the holder look like a host: loopback up, its own sysfs (minirt writes a bridge port's
    hairpin flag there) with the real cgroup mounts kept on top (the one tree shared with the
    real host: every container gets a cgroup, as tests/conftest.py's HostNS does), and a /run of
    its own (`ip netns add` makes /run/netns, which would otherwise be left in the real host's
    /run), with the bench's root (under the real /run) carried over it. `extra` commands run
    first. Every mount is `mount -n` (no /run/mount/utab on the host)."""
    inside = ["nsenter", "-t", str(pid), "-n", "-m", "--"]
    hold = os.path.join(root, "cgroup-hold")  # a mount point for a moment (holder's namespace only)
    os.mkdir(hold)
    run_hold = tempfile.mkdtemp(prefix="minirt-bench-hold-")  # the same, outside /run
    for cmd in [*extra, ["ip", "link", "set", "lo", "up"],
                ["mount", "-n", "--rbind", "/sys/fs/cgroup", hold],
                ["mount", "-n", "-t", "sysfs", "sysfs", "/sys"],
                ["mount", "-n", "--move", hold, "/sys/fs/cgroup"],
                ["mount", "-n", "--bind", root, run_hold],
                ["mount", "-n", "-t", "tmpfs", "-o", "mode=755", "tmpfs", "/run"],
                ["mkdir", "-p", root],
                ["mount", "-n", "--move", run_hold, root]]:
        subprocess.run(inside + cmd, check=True)
    os.rmdir(run_hold)  # a mount point only in the holder's namespace, and no longer one

def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def fail(msg: str) -> "NoReturn":  # noqa: F821
    sys.stderr.write(f"bench: {msg.rstrip()}\n")
    sys.exit(1)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if os.geteuid() != 0:
        fail("must run as root (minirt and unshare create namespaces)")
    for path in (VPY, MINIRT):
        if not os.access(path, os.X_OK):
            fail(f"{path} is missing: run `make venv rootfs` first")
    unshare = shutil.which("unshare")
    if not unshare:
        fail("unshare not found (util-linux)")

    compiled = compile_bytecode()
    load_start = loadavg()
    started = datetime.datetime.now().astimezone()
    root = tempfile.mkdtemp(prefix="minirt-bench-", dir="/run")
    config, cg_parent = setup_cgroup_parent(root)
    cg_errors: list[str] = []
    completed = False
    oci_states: list = []
    docker_env = None
    podman_state = None
    # The bridge cases get their own throwaway host namespace, so minirt0, the nft table and
    # ip_forward of the real host are never touched (and the tutorial's `ip netns` bind
    # mounts stay in the holder's private mount namespace).
    holder = start_holder(root)
    try:
        inside = ["nsenter", "-t", str(holder.pid), "-n", "-m", "--"]
        setup_holder(holder.pid, root, [["ip", "link", "add", "tutbr0", "type", "bridge"],
                                        ["ip", "addr", "add", "203.0.113.1/24", "dev", "tutbr0"],
                                        ["ip", "link", "set", "tutbr0", "up"]])
        base_env = dict(os.environ)
        base_env.pop("MINIRT_TIMING", None)
        # MINIRT_CONFIG: every container's cgroup under the bench's own parent (setup_cgroup_parent)
        # MINIRT_STORE: the IMAGE case's image store, the bench's own (never /var/lib/minirt)
        minirt_env = dict(base_env, MINIRT_ROOT=root, MINIRT_CONFIG=config, MINIRT_TIMING="1",
                          MINIRT_STORE=os.path.join(root, "store"))
        rootfs_dir = os.path.realpath(os.path.join(VENV, "share", "minirt", "rootfs"))
        image = bench_image(rootfs_dir, os.path.join(root, "image.tar"))
        subprocess.run([MINIRT, "load", "-q", "-i", os.path.join(root, "image.tar")], env=minirt_env, check=True)
        cases = [
            (NET_NONE, [MINIRT, "run", "--rm", "--net", "none", "--", "/bin/true"], minirt_env),
            # the same run plus creating the cgroup's limits (issue 11: ≤ 10% over the plain one)
            (LIMITS, [MINIRT, "run", "--rm", "--net", "none", *LIMITS_ARGS, "--", "/bin/true"], minirt_env),
            # the same run in a user namespace (issue 12: ≤ 10% over the plain one)
            (USERNS, [MINIRT, "run", "--rm", "--net", "none", "--userns-remap", "default", "--", "/bin/true"],
             minirt_env),
            # the same run without the seccomp filter (issue 12: the default one ≤ 5% over it)
            (SECCOMP_OFF, [MINIRT, "run", "--rm", "--net", "none", "--security-opt", "seccomp=unconfined", "--",
                           "/bin/true"], minirt_env),
            # an image of three layers against the same root given as a directory (issue 16: ≤ 1.1×)
            (ROOTFS_DIR, [MINIRT, "run", "--rm", "--net", "none", "--rootfs", rootfs_dir, "--", "/bin/true"],
             minirt_env),
            (IMAGE, [MINIRT, "run", "--rm", "--net", "none", image, "/bin/true"], minirt_env),
            (UNSHARE, [unshare, "--net", "--mount", "--pid", "--uts", "--ipc", "--fork", "/bin/true"], base_env),
            (NET_HOST, [MINIRT, "run", "--rm", "--net", "host", "--", "/bin/true"], minirt_env),
            (BARE_PY, [VPY, "-S", "-c", "pass"], base_env),
            (NET_BRIDGE, inside + [MINIRT, "run", "--rm", "--", "/bin/true"], dict(minirt_env, MINIRT_TIMING="")),
            (TUTORIAL, inside + [os.path.join(REPO, "bench", "tutorial.sh")], base_env),
            (NET_PUBLISH, inside + [MINIRT, "run", "--rm", "-p", "18080:80", "--", "/bin/true"],
             dict(minirt_env, MINIRT_TIMING="")),
        ]
        # exec latency: into one detached container, beside nsenter -a into the same one
        run_env = dict(minirt_env, MINIRT_TIMING="")
        subprocess.run(inside + [MINIRT, "run", "-d", "--name", "benchexec", "--", "sleep", "3600"],
                       env=run_env, check=True, capture_output=True)  # fmt: skip
        with open(os.path.join(root, "containers", sorted(os.listdir(os.path.join(root, "containers")))[0],
                               "state.json")) as f:  # fmt: skip
            exec_pid = str(json.load(f)["pid"])
        cases += [
            (EXEC, [MINIRT, "exec", "benchexec", "/bin/true"], run_env),
            (NSENTER, ["nsenter", "-a", "-t", exec_pid, "/bin/true"], base_env),
        ]
        # runc and crun run outside the holder (it has its own /sys); their spec gives each
        # container a new netns of its own.
        rootfs = os.path.realpath(os.path.join(VENV, "share", "minirt", "rootfs"))
        peer_cases, skipped, oci_states = oci_peers(root, rootfs, base_env, args.quick)
        cases += peer_cases
        skipped.update(engine_skip_reasons(args.peers))
        if "docker" in args.peers and not args.quick:
            docker_env, docker_cases = engine_docker()
            cases += docker_cases
        if "podman" in args.peers and not args.quick:
            podman_state, podman_cases = engine_podman(root)
            cases += podman_cases
        results: dict[str, list[float]] = {name: [] for name, _, _ in cases}
        phase_runs: list[dict[str, float]] = []
        offset_runs: dict[str, list[float]] = {}
        try:
            for _ in range(args.warmups):
                for _name, cmd, env in cases:
                    run_once(cmd, env)
            for i in range(args.runs):
                k = i % len(cases)
                for name, cmd, env in cases[k:] + cases[:k]:
                    wall, spawn_ms, end_ms, err = run_once(cmd, env)
                    results[name].append(wall)
                    if name == NET_NONE:
                        marks = parse_timing(err)
                        if not marks:
                            raise RunFailed(f"{name}: no timing marks on stderr (MINIRT_TIMING=1)\n{err}")
                        phase_runs.append(phases(marks, spawn_ms, end_ms))
                        for step, at in offsets(marks, spawn_ms).items():
                            offset_runs.setdefault(step, []).append(at)
                        offset_runs.setdefault(EXIT, []).append(end_ms - spawn_ms)
            # the seccomp program's cold path: each run finds the cache empty and compiles
            cold = []
            for _ in range(COLD_SECCOMP if not args.quick else 1):
                shutil.rmtree(os.path.join(root, "seccomp"), ignore_errors=True)
                cold.append(run_once([MINIRT, "run", "--rm", "--net", "none", "--", "/bin/true"],
                                     dict(minirt_env, MINIRT_TIMING=""))[0])  # fmt: skip
            results[COLD_KEY] = cold
        except (RunFailed, ValueError) as e:
            fail(f"a run failed: {e}")
        # the engines' daemons would keep stealing CPU from the batches: stop them first
        if podman_state is not None:
            cleanup_podman(*podman_state)
            podman_state = None
        if docker_env is not None:
            for note in docker_env.stop():
                print(f"bench: docker: {note}", file=sys.stderr)
            docker_env = None
        # sequential batches on the bridge: N x `run --rm -- true`; N x (run -d, then rm -f)
        batches: dict[str, list[float]] = {SEQ_RM: [], THROUGHPUT: []}
        try:
            for _ in range(args.sequential):
                batches[SEQ_RM].append(run_once(inside + [MINIRT, "run", "--rm", "--", "/bin/true"], run_env)[0])
            for i in range(args.throughput):
                t0 = time.perf_counter()
                run_once(inside + [MINIRT, "run", "-d", "--name", f"tp{i}", "--", "sleep", "60"], run_env)
                run_once(inside + [MINIRT, "rm", "-f", f"tp{i}"], run_env)
                batches[THROUGHPUT].append((time.perf_counter() - t0) * 1000)
        except RunFailed as e:
            fail(f"a sequential run failed: {e}")
        subprocess.run(inside + [MINIRT, "rm", "-f", "benchexec"], env=run_env, check=True, capture_output=True)
        records = os.path.join(root, "containers")
        leftover = os.listdir(records) if os.path.isdir(records) else []
        if leftover:
            fail(f"--rm left container records behind in {root}/containers: {leftover}")
        # stats --no-stream with N running containers (issue 11), once nothing else runs
        try:
            stats_samples, stats_skip = stats_bench(run_env, args.stats, args.runs, args.warmups)
        except RunFailed as e:
            fail(f"a stats run failed: {e}")
        completed = True
    finally:
        # a failed run must not leave the exec case's detached container (and its supervisor)
        subprocess.run(["nsenter", "-t", str(holder.pid), "-n", "-m", "--", MINIRT, "rm", "-f", "benchexec"],
                       env=dict(os.environ, MINIRT_ROOT=root, MINIRT_CONFIG=config), capture_output=True)  # fmt: skip
        cleanup_oci(oci_states)
        if podman_state is not None:
            cleanup_podman(*podman_state)
        if docker_env is not None:
            for note in docker_env.stop():
                print(f"bench: docker: {note}", file=sys.stderr)
        holder.kill()
        holder.wait()
        # last, once every container is gone: the host keeps no cgroup of the bench's
        cg_errors = remove_cgroup_parent(cg_parent)
        if not completed:  # no report will carry them
            for line in cg_errors:
                print(f"bench: {line}", file=sys.stderr)
        shutil.rmtree(root, ignore_errors=True)

    u = os.uname()
    bytecode = f"{compiled}; {bytecode_state()}"
    header = header_line(bytecode, os.cpu_count(), f"{u.sysname} {u.release}", load_start)
    meta = {
        "date": started.isoformat(timespec="seconds"),
        "kernel": f"{u.sysname} {u.release} {u.version} {u.machine}",
        "CPUs": f"{os.cpu_count()} (usable: {len(os.sched_getaffinity(0))})",
        "load average (1/5/15 min)": f"start {load_start}, end {loadavg()}",
        "python": f"{platform.python_version()} ({VPY}); PYTHONDONTWRITEBYTECODE="
                  f"{os.environ.get('PYTHONDONTWRITEBYTECODE', '(unset)')}",
        "minirt": f"{MINIRT}; {bytecode}",
        "method": f"{args.runs} runs per case after {args.warmups} warm-up round(s), interleaved round-robin; "
                  "wall time by perf_counter around subprocess.run (stdout/stderr captured); "
                  "minirt runs with MINIRT_TIMING=1 and a temporary MINIRT_ROOT under /run",
        "cgroups": f"every container under the relative cgroup parent {cg_parent} (nested in the bench's own "
                   "cgroup per hierarchy; $MINIRT_CONFIG), removed at the end: "
                   + ("left nothing" if not cg_errors else f"{len(cg_errors)} error(s), see the end"),
    }
    ends = {step: summarize(v)["median"] for step, v in offset_runs.items()}
    report = render_report(meta, results, phase_runs, ends, skipped, header)
    if results.get(EXEC) and results.get(NSENTER):
        e, n = summarize(results[EXEC])["median"], summarize(results[NSENTER])["median"]
        report += f"exec: minirt exec {fmt_ms(e)} ms vs nsenter -a {fmt_ms(n)} ms ({e / n:.2f}×)\n"
    ports = subprocess.run(["unshare", "--net", VPY, os.path.join(REPO, "bench", "ports_bench.py")],
                           capture_output=True, text=True)  # fmt: skip
    if ports.returncode != 0:
        fail(f"ports bench failed:\n{ports.stderr}")
    report += "\n## published ports (nft maps; a throwaway netns)\n\n" + ports.stdout + "\n"
    if any(batches.values()):
        report += ("\n## sequential batches (inside the throwaway netns, after the interleaved cases)\n\n"
                   + render_table(batch_rows(batches), BATCH_HEADER))
        tp = batches[THROUGHPUT]
        if tp:
            report += (f"\nthroughput: {len(tp)} × (run -d + rm -f) in {sum(tp) / 1000:.1f} s: "
                       f"{len(tp) / (sum(tp) / 1000):.1f} containers/s\n")
    report += "\n" + stats_section(args.stats, stats_samples, stats_skip)
    if cg_errors:
        report += "\n## cgroup cleanup\n\n" + "\n".join(cg_errors) + "\n"
    sys.stdout.write(report)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            f.write(report)
        sys.stdout.write(f"\n(written to {os.path.relpath(os.path.abspath(args.out))})\n")
        png = os.path.splitext(os.path.abspath(args.out))[0] + ".png"
        title = (f"minirt start-up vs baselines and peers: {args.runs} runs per case, "
                 f"{started.isoformat(timespec='minutes')}, {os.cpu_count()} CPUs")
        sys.stdout.write(write_chart(results, png, title) + "\n")
    return 1 if cg_errors else 0  # a leaked cgroup is a minirt bug: the smoke test must see it


if __name__ == "__main__":
    sys.exit(main())
