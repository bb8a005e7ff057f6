"""Chaos: kill -9 minirt at random instants and at every fault point, then `gc`; nothing may remain.

Each round starts `minirt run --rm -p PORT:80 -- sleep 3` (or the detached form) inside the
test's throwaway host namespace and kills it: at a random instant of its start-up, or at a
named fault point (MINIRT_FAULT=kill:<point>, where minirt SIGKILLs itself). Every third round
also kills everything the run forked (the sentinel of a foreground run, the nft helper, the
supervisor, the container), so no watchdog can clean up and `gc` has to work from the records
alone. A detached round's supervisor has no sentinel at all: once it has reported, its kill
leaves the plan to `gc` (docs/architecture.md, "who cleans up a detached container"). After all
rounds, `minirt gc` runs once and the kernel is checked: no record, lease, map element, veth,
cgroup, reserved port socket, process or mount of any round is left.

MINIRT_CHAOS_ROUNDS overrides the number of rounds (default 100, the issue's minimum).
"""

import json
import os
import random
import signal
import sys
import time

from tests.helpers import cgroups
from tests.integration.test_lifecycle import inspect, ok, wait_for

ROUNDS = int(os.environ.get("MINIRT_CHAOS_ROUNDS") or 100)
# every point where a `run -p` on the default network can stop (minirt/faults.py callers)
FAULT_POINTS = ["after-record", "after-cgroup", "after-spawn", "after-lease", "after-veth", "after-address",
                "after-publish", "after-network", "after-exec"]  # fmt: skip
BASE_PORT = 21000


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                data = f.read()
        except OSError:
            continue
        ppid = int(data[data.rindex(b")") + 2 :].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def descendants(pid: int) -> list[int]:
    kids, out, todo = _children(), [], [pid]
    while todo:
        p = todo.pop()
        for c in kids.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def _kill(pids) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rindex(b")") + 2 :].split()[0] not in (b"Z", b"X")


def _minirt_pids(minirt) -> list[int]:
    from tests.helpers import kernel

    return [int(p.split()[0]) for p in kernel.minirt_processes(set(), root=minirt.root)]


def _elements(minirt) -> list[str]:
    out = []
    for m in ("ports_any", "ports_ip", "ports6_any", "ports6_ip"):
        r = minirt.host.run("nft", "-j", "list", "map", "inet", "minirt", m, check=False)
        if r.returncode != 0:
            continue  # no table or map yet: nothing published in it
        for obj in json.loads(r.stdout)["nftables"]:
            out += [f"{m}: {e}" for e in obj.get("map", {}).get("elem", [])]
    return out


def _ports_free(minirt, ports: list[int]) -> list[int]:
    """The host ports of the rounds that something in the test's host namespace still holds."""
    code = ("import socket,sys\nheld=[]\nfor p in map(int, sys.argv[1:]):\n"
            "    s=socket.socket()\n    try: s.bind(('0.0.0.0', p))\n    except OSError: held.append(p)\n"
            "    finally: s.close()\nprint(' '.join(map(str, held)))")  # fmt: skip
    r = minirt.host.run(sys.executable, "-c", code, *map(str, ports))
    return [int(x) for x in r.stdout.split()]


def test_kill_9_at_random_instants_and_fault_points_then_gc_leaves_nothing(minirt):
    rng = random.Random(10)
    seen: set[int] = set()
    ports = []
    kinds = {"random": 0, "fault": 0, "group": 0, "detached": 0}
    errors: list[str] = []
    for i in range(ROUNDS):
        port = BASE_PORT + i
        ports.append(port)
        point = FAULT_POINTS[i % len(FAULT_POINTS)] if i % 2 else None
        group = i % 3 == 0
        detached = i % 5 == 4
        env = {"MINIRT_FAULT": f"kill:{point}"} if point else None
        limits = ["--memory", "64m", "--pids-limit", "50"] if i % 2 else []  # every container has a cgroup
        args = ["run", "--rm", "-p", f"{port}:80", *limits] + (["-d"] if detached else []) + ["--", "sleep", "3"]
        p = minirt.popen(*args, env=env)
        kinds["fault" if point else "random"] += 1
        kinds["group"] += group
        kinds["detached"] += detached
        if point:
            p.wait(timeout=30)
            if group:  # whatever it left running (the sentinel in the middle of its work)
                pids = _minirt_pids(minirt)
                seen.update(pids)
                _kill(pids)
        else:
            time.sleep(rng.uniform(0, 0.12))
            mine = descendants(p.pid) if group else []
            seen.update(mine)
            _kill([p.pid, *mine])
            p.wait(timeout=30)
            if group:  # a supervisor that had already detached is no longer our descendant
                pids = _minirt_pids(minirt)
                seen.update(pids)
                _kill(pids)
        if point:  # what a run stopped at a fault point said (it should say nothing: it was killed)
            said = p.stderr.read().strip()
            if said:
                errors.append(f"round {i} (kill:{point}): {said[-1200:]}")
        p.stdout.close()
        p.stderr.close()
    # the sentinels (foreground runs) that were not killed finish their work; the containers die
    # with their owner; what a killed detached supervisor left is gc's
    wait_for(lambda: not _minirt_pids(minirt), timeout=30, what="minirt processes to exit")
    wait_for(lambda: not [x for x in seen if _alive(x)], timeout=30, what="the killed processes to go")
    ok(minirt("gc"))

    left = [c for c in minirt.containers()]
    for cid in left:  # detached runs are --rm too, but a dead one may be kept as "exited" for gc
        st = json.load(open(f"{minirt.root}/containers/{cid}/state.json"))
        assert st["status"] == "exited", st
    if left:
        ok(minirt("rm", *left))
    assert minirt.containers() == []
    names = f"{minirt.root}/names"
    assert not os.path.isdir(names) or os.listdir(names) == []
    leases = f"{minirt.root}/networks/minirt/leases"
    assert os.path.isdir(leases), f"no run reached the network; runs said: {errors[:5]}"
    assert [x for x in os.listdir(leases) if x[0].isdigit()] == []
    assert _elements(minirt) == []
    assert cgroups.leftovers(minirt.cgroup_parent) == []
    assert _ports_free(minirt, ports) == []
    assert not _minirt_pids(minirt)
    mounts = open(f"/proc/{minirt.host.pid}/mountinfo").read()
    assert "overlay" not in mounts and minirt.root not in mounts
    # events: whoever ended a container (its owner, the sentinel, `run -d`, gc) wrote `die` once, and only
    # for a container whose `start` was written (docs/events.md)
    per: dict[str, list[str]] = {}
    for line in ok(minirt("events", "--since", "0", "--until", "0s", "--format", "json")).splitlines():
        ev = json.loads(line)
        if ev["Type"] == "container":
            per.setdefault(ev["Actor"]["ID"], []).append(ev["Action"])
    assert per
    for cid, acts in per.items():
        assert all(acts.count(a) <= 1 for a in ("create", "start", "die", "destroy")), (cid, acts)
        assert acts.count("die") == acts.count("start"), (cid, acts)
        if "die" in acts:
            assert acts.index("start") < acts.index("die"), (cid, acts)
    # veths (polled: a dead netns's pair goes asynchronously) and leases: the fixture checks them
    print(f"chaos: {ROUNDS} rounds: {kinds}")


def test_gc_dry_run_lists_and_explain_prints_without_touching(minirt):
    """A stale element, lease and veth made by a killed run: --dry-run lists them and changes
    nothing; gc then removes them."""
    p = minirt.popen("run", "--rm", "-p", "21999:80", "--", "sleep", "30")
    wait_for(lambda: _elements(minirt), what="the port to be published")
    mine = descendants(p.pid)
    _kill([p.pid, *mine])
    p.wait(timeout=30)
    wait_for(lambda: not [x for x in mine if _alive(x)], what="the killed processes to go")
    before = _elements(minirt)
    assert len(before) == 1
    r = minirt("gc", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "ports_any" in r.stdout and "lease" in r.stdout, r.stdout
    assert _elements(minirt) == before
    r = minirt("gc", "--explain")
    assert r.returncode == 0, r.stderr
    assert "nft" in r.stderr and "delete element inet minirt ports_any" in r.stderr, r.stderr
    assert _elements(minirt) == []
    assert cgroups.leftovers(minirt.cgroup_parent) == []
    assert minirt.containers() == []


def test_reload_and_gc_remove_what_no_live_container_owns(minirt):
    """`network reload` re-adds a live container's element after a flush and removes stale ones
    (a killed run's, and one nobody ever recorded); a stray `mr…` veth on our bridge goes too;
    what points outside this state root's networks (another MINIRT_ROOT's) stays; `gc` then
    finalizes the dead record; the live container is untouched throughout."""
    ok(minirt("run", "-d", "--name", "live", "-p", "21500:80", "--", "sleep", "60"))
    live_ip = inspect(minirt, "live")["NetworkSettings"]["IPAddress"]
    stale_ip = live_ip.rsplit(".", 1)[0] + ".250"  # inside the network's subnet, nobody's
    p = minirt.popen("run", "--rm", "-p", "21501:80", "--", "sleep", "60")
    wait_for(lambda: len(_elements(minirt)) == 2, what="both ports to be published")
    mine = descendants(p.pid)
    _kill([p.pid, *mine])
    p.wait(timeout=30)
    wait_for(lambda: not [x for x in mine if _alive(x)], what="the killed run to go")
    minirt.host.run(
        "ip", "link", "add", "mr0123456789ab", "master", "minirt0", "type", "veth", "peer", "name", "mtpeer0"
    )
    minirt.host.run("ip", "link", "add", "mr0123456789cd", "type", "veth", "peer", "name", "mtpeer1")
    minirt.host.run("nft", "flush", "map", "inet", "minirt", "ports_any")
    minirt.host.run("nft", f"add element inet minirt ports_any {{ tcp . 21502 : {stale_ip} . 80 }}")
    minirt.host.run("nft", "add element inet minirt ports_any { tcp . 21503 : 198.51.100.7 . 80 }")
    ok(minirt("network", "reload"))
    assert sorted(_elements(minirt)) == [
        f"ports_any: [{{'concat': ['tcp', 21500]}}, {{'concat': ['{live_ip}', 80]}}]",
        "ports_any: [{'concat': ['tcp', 21503]}, {'concat': ['198.51.100.7', 80]}]",
    ]
    assert minirt.host.run("ip", "link", "show", "mr0123456789ab", check=False).returncode != 0
    assert minirt.host.run("ip", "link", "show", "mr0123456789cd", check=False).returncode != 0  # on no bridge
    dead = [
        c for c in minirt.containers() if json.load(open(f"{minirt.root}/containers/{c}/state.json"))["name"] != "live"
    ]
    assert len(dead) == 1
    out = ok(minirt("gc"))
    assert f"container {dead[0][:12]}: dead" in out, out
    assert dead[0] not in minirt.containers()
    assert inspect(minirt, "live")["State"]["Running"]
    assert ok(minirt("gc", "--dry-run")) == ""  # nothing left to reclaim, the live one is not
    ok(minirt("rm", "-f", "live"))
    assert _elements(minirt) == ["ports_any: [{'concat': ['tcp', 21503]}, {'concat': ['198.51.100.7', 80]}]"]
    minirt.host.run("nft", "flush", "map", "inet", "minirt", "ports_any")
