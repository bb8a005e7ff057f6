"""minirt stats [--no-stream] [--format json|table] [-a] [--no-trunc] [CONTAINER...]: CPU, memory,
network, block I/O and pids of containers, as `docker stats` shows them.

Docker's daemon samples each container once a second and `docker stats --no-stream` asks it for
a sample and the one before (docker/cli stats_helpers.go, IncludePreviousSample), so it waits up
to 1-2 s. We have no daemon: --no-stream takes its two samples itself, NO_STREAM_INTERVAL apart.
50 ms keeps 50 containers within 100 ms including Python's start (issue 11), at the price of
precision: /proc/stat counts 10 ms ticks per CPU, so a 50 ms system delta is known to about
one tick in five per CPU. Everything but the CPU counters is read once, while waiting for the
second sample (_round). Streaming redraws every second, as Docker's daemon samples.

Which containers: the running ones (-a: all); named ones whatever their state. A stopped one
shows zeros with --no-stream (the daemon's empty sample) and "--" while streaming (the CLI's
"timeout waiting for stats" row). Container is the reference given, else the short id, as in
docker/cli stats.go.
"""

import sys
import time

from minirt.cliparse import FLAG, VALUE, Option, parse
from minirt.errors import ConfigError, NoSuchObject

USAGE = "minirt stats [OPTIONS] [CONTAINER...]"
OPTIONS = [
    Option(("-a", "--all"), FLAG, "show all containers (default: running ones)"),
    Option(("--no-stream",), FLAG, "print one sample and exit"),
    Option(("--no-trunc",), FLAG, "do not truncate the container id"),
    Option(("--format",), VALUE, "table (default) or json (one object per line)", "FORMAT"),
]
NO_STREAM_INTERVAL = 0.05
STREAM_INTERVAL = 1.0
CLEAR = "\033[2J\033[H"  # docker/cli stats.go cleanScreen


def main(args: list[str]) -> int:
    opts, refs = parse(OPTIONS, args, stop_at_operand=False, prog=USAGE)
    fmt = opts["format"] or "table"
    if fmt not in ("table", "json"):
        raise ConfigError(f"unsupported --format {fmt!r}: table or json (minirt has no Go templates)")
    from minirt.state import Store

    store = Store()
    named = _resolve(store, refs) if refs else None
    out, trunc = sys.stdout, not opts["no_trunc"]
    targets = _targets(store, named, opts["all"])
    before, due = _sample_cpu(targets), time.monotonic() + NO_STREAM_INTERVAL
    if opts["no_stream"]:
        out.write(_render(_round(targets, before, due, stream=False), fmt, trunc))
        return 0
    clear = CLEAR if out.isatty() else ""
    try:
        while True:  # the first table comes at once, then one a second
            entries = _round(targets, before, due, stream=True)
            out.write(clear + _render(entries, fmt, trunc))
            out.flush()
            if named is not None and not targets:
                return 0  # every named container was removed (docker/cli: nothing left to show)
            due += STREAM_INTERVAL
            targets = _targets(store, named, opts["all"])  # started and stopped ones come and go
            for t in targets:  # a newcomer's baseline is now; the others keep this round's
                before.setdefault(t[1], _cpu_ns(t[4]))
    except KeyboardInterrupt:
        return 0  # Ctrl-C is how streaming ends


def _resolve(store, refs: list[str]) -> list[tuple[str, str]]:
    """[(reference as given, id)]; every unknown one is named in the one error line."""
    out, missing = [], []
    for ref in refs:
        try:
            out.append((ref, store.resolve(ref)))
        except NoSuchObject as e:
            missing.append(str(e))
    if missing:
        raise NoSuchObject("; ".join(missing))
    return out


def _targets(store, named, all_: bool) -> list[tuple]:
    """[(container, id, record, running, driver)] to sample now."""
    from minirt import cgroups, liveness

    pairs = named if named is not None else [(None, cid) for cid in store.ids()]
    out = []
    for ref, cid in pairs:
        try:
            rec = store.load(cid)
        except (OSError, ValueError):
            continue  # removed meanwhile, or being written for the first time
        running = liveness.status(rec) == "running"
        if not running and named is None and not all_:
            continue
        drv = cgroups.driver(rec.get("cgroup")) if running else None
        out.append((ref or cid[:12], cid, rec, running, drv))
    return out


def _sample_cpu(targets: list[tuple]) -> dict:
    """The CPU counters, the host's under "": the only numbers read twice."""
    from minirt.cgroups.stats import system_cpu

    cpu = {t[1]: _cpu_ns(t[4]) for t in targets}
    cpu[""], cpu["online"] = system_cpu()
    return cpu


def _cpu_ns(drv) -> int:
    try:
        return drv.cpu_ns() if drv is not None else 0
    except OSError:
        return 0  # the container exited and its cgroup went away between the samples


def _round(targets: list[tuple], before: dict, due: float, stream: bool) -> list:
    """One round's entries. The point-in-time numbers (memory, block I/O, pids, network) are
    read while waiting for the second CPU sample, so they cost no time of their own; `before`
    then becomes that sample, the next round's baseline."""
    from minirt.cgroups import stats as st

    read = []
    total, counters = 0, None
    for container, cid, rec, running, drv in targets:
        e = st.Entry(container, cid, rec.get("name", ""), invalid=stream and not running)
        s = None
        if drv is not None:
            try:
                s = drv.stats()
            except OSError:
                s = None  # exited meanwhile: the zeros of a stopped container
            total = total or st.mem_total()
        names = st.ifnames(rec) if s is not None else []
        if names and counters is None:
            counters = st.net_counters()
        read.append((e, s, st.net_io(names, counters or {})))
    left = due - time.monotonic()
    if left > 0:
        time.sleep(left)
    after = _sample_cpu(targets)
    sys_delta = after[""] - before[""]
    for e, s, net in read:
        if s is not None:
            e.fill(s, st.cpu_percent(after[e.id] - before.get(e.id, 0), sys_delta, after["online"]), total, net)
    before.clear()
    before.update(after)
    return [r[0] for r in read]


def _render(entries: list, fmt: str, trunc: bool) -> str:
    from minirt.cgroups.stats import fields, json_line, table

    rows = [fields(e, trunc) for e in entries]
    if fmt == "json":
        return "".join(json_line(r) for r in rows)
    return table(rows)
