"""`minirt events`: what each lifecycle step writes, read back through the verb, in the test's
own host namespace and MINIRT_ROOT. Docker's orders and attributes (docs/events.md)."""

import json
import os
import queue
import re
import signal
import threading
import time

from tests.integration.test_cgroups import HOG
from tests.integration.test_lifecycle import inspect, ok, wait_for


def history(minirt, *args: str) -> list[dict]:
    """Every event so far (optionally filtered), as JSON, through `minirt events --until`."""
    out = ok(minirt("events", "--since", "0", "--until", "0s", "--format", "json", *args, timeout=20))
    return [json.loads(line) for line in out.splitlines()]


def actions(evs: list[dict]) -> list[str]:
    return [f"{e['Type']} {e['Action']}" for e in evs]


def record(minirt, cid: str) -> dict:
    with open(f"{minirt.root}/containers/{cid}/state.json") as f:
        return json.load(f)


def test_run_rm_net_none_is_create_start_die_destroy(minirt):
    r = minirt("run", "--rm", "--net", "none", "--name", "three", "--", "sh", "-c", "exit 3")
    assert r.returncode == 3, r.stderr
    evs = history(minirt, "--filter", "container=three")
    assert actions(evs) == ["container create", "container start", "container die", "container destroy"]
    cid = evs[0]["Actor"]["ID"]
    assert len(cid) == 64 and all(e["Actor"]["ID"] == cid for e in evs)
    assert evs[2]["Actor"]["Attributes"]["exitCode"] == "3"
    assert all(e["Actor"]["Attributes"]["name"] == "three" and e["Actor"]["Attributes"]["image"] for e in evs)
    assert all(e["scope"] == "local" and e["time"] == e["timeNano"] // 10**9 for e in evs)
    assert [e["timeNano"] for e in evs] == sorted(e["timeNano"] for e in evs)
    # the default output is the docker CLI's line
    text = ok(minirt("events", "--since", "0", "--until", "0s", "--filter", "event=die")).splitlines()
    assert len(text) == 1 and re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}(Z|[+-]\d\d:\d\d) container die " + cid
        + r" \(exitCode=3, image=\S+, name=three\)", text[0]), text  # fmt: skip
    # a command that cannot be executed is rolled back: created and destroyed, never started
    assert minirt("run", "--net", "none", "--name", "nope", "--", "nosuchcmd").returncode == 127
    assert actions(history(minirt, "--filter", "container=nope")) == ["container create", "container destroy"]


def test_a_bridge_run_connects_and_disconnects_its_network_in_dockers_order(minirt):
    ok(minirt("run", "--rm", "--name", "br", "--", "true"))
    evs = history(minirt)
    # the default network is made by the first container that needs it (Docker's exists always)
    assert actions(evs) == ["container create", "network create", "network connect", "container start",
                            "container die", "network disconnect", "container destroy"]  # fmt: skip
    cid = evs[0]["Actor"]["ID"]
    net_id = evs[1]["Actor"]["ID"]
    assert re.fullmatch(r"[0-9a-f]{64}", net_id)
    assert evs[1]["Actor"]["Attributes"] == {"name": "minirt", "type": "bridge"}
    for e in (evs[2], evs[5]):
        assert e["Actor"] == {"ID": net_id, "Attributes": {"container": cid, "name": "minirt", "type": "bridge"}}
    # a second run: the default network exists now, no second `network create`
    ok(minirt("run", "--rm", "--", "true"))
    assert actions(history(minirt, "--filter", "type=network", "--filter", "event=create")) == ["network create"]


def test_stop_is_kill_then_die_then_stop_and_rm_is_destroy(minirt):
    cid = ok(minirt("run", "-d", "--net", "none", "--name", "svc", "--",
                    "sh", "-c", "trap 'exit 0' TERM; sleep 60 & wait")).strip()  # fmt: skip
    ok(minirt("stop", "-t", "5", "svc"))
    ok(minirt("rm", "svc"))
    evs = history(minirt, "--filter", f"container={cid[:12]}")
    assert actions(evs) == ["container create", "container start", "container kill", "container die",
                            "container stop", "container destroy"]  # fmt: skip
    assert evs[2]["Actor"]["Attributes"]["signal"] == "15"
    assert evs[3]["Actor"]["Attributes"]["exitCode"] == "0"
    # kill -s, and rm -f of a running container: kill (9), die 137, destroy; no stop
    ok(minirt("run", "-d", "--net", "none", "--name", "k2", "--", "sleep", "60"))
    ok(minirt("kill", "-s", "USR1", "k2"))  # ignored by PID 1 without a handler: still running
    ok(minirt("rm", "-f", "k2"))
    evs = history(minirt, "--filter", "container=k2")
    assert actions(evs) == ["container create", "container start", "container kill", "container kill",
                            "container die", "container destroy"]  # fmt: skip
    assert [e["Actor"]["Attributes"].get("signal") for e in evs[2:4]] == [str(signal.SIGUSR1), "9"]
    assert evs[4]["Actor"]["Attributes"]["exitCode"] == "137"


def test_kill_9_of_the_supervisor_still_writes_die_once(minirt):
    cid = ok(minirt("run", "-d", "--name", "orphan", "--", "sleep", "60")).strip()
    sup = record(minirt, cid)["supervisor"]["pid"]
    os.kill(sup, signal.SIGKILL)
    # a detached container has no sentinel: its init dies with the supervisor (PDEATHSIG) and
    # the record says "dead" until the next gc carries out the plan and writes die
    wait_for(lambda: inspect(minirt, cid)["State"]["Status"] == "dead", what="the init to die with its owner")
    ok(minirt("gc"))
    assert inspect(minirt, cid)["State"]["Status"] == "exited"
    ok(minirt("gc"))  # finds nothing left to finalize: no second die
    ok(minirt("rm", "orphan"))
    evs = history(minirt, "--filter", "container=orphan")
    assert actions(evs) == ["container create", "container start", "container die", "container destroy"]
    assert evs[2]["Actor"]["Attributes"]["exitCode"] == "137"
    net = history(minirt, "--filter", "type=network", "--filter", "event=connect", "--filter", "event=disconnect")
    assert actions(net) == ["network connect", "network disconnect"]  # the plan's lease step, by gc


def test_oom_then_die_137(minirt):
    r = minirt("run", "--net", "none", "--name", "hog", "--memory", "32m", "--", *HOG, timeout=120)
    assert r.returncode == 137, r.stderr
    evs = history(minirt, "--filter", "container=hog")
    assert actions(evs) == ["container create", "container start", "container oom", "container die"]
    assert evs[3]["Actor"]["Attributes"]["exitCode"] == "137"
    ok(minirt("rm", "hog"))


def test_network_create_connect_disconnect_rm(minirt):
    ok(minirt("network", "create", "--subnet", "10.93.0.0/24", "evnet"))
    cid = ok(minirt("run", "-d", "--name", "member", "--", "sleep", "60")).strip()
    ok(minirt("network", "connect", "evnet", "member"))
    ok(minirt("network", "disconnect", "evnet", "member"))
    ok(minirt("rm", "-f", "member"))
    ok(minirt("network", "rm", "evnet"))
    evs = history(minirt, "--filter", "network=evnet")
    assert actions(evs) == ["network create", "network connect", "network disconnect", "network destroy"]
    nid = evs[0]["Actor"]["ID"]
    assert all(e["Actor"]["ID"] == nid for e in evs)
    assert evs[1]["Actor"]["Attributes"] == {"container": cid, "name": "evnet", "type": "bridge"}
    assert evs[3]["Actor"]["Attributes"] == {"name": "evnet", "type": "bridge"}
    # by id prefix too, as Docker's fuzzy match
    assert len(history(minirt, "--filter", f"network={nid[:12]}")) == 4


def test_since_and_until_select_a_window(minirt):
    ok(minirt("run", "--rm", "--net", "none", "--name", "first", "--", "true"))
    time.sleep(0.05)
    between = time.time()
    time.sleep(0.05)
    ok(minirt("run", "--rm", "--net", "none", "--name", "second", "--", "true"))
    stamp = f"{between:.9f}"  # Unix seconds.nanoseconds
    names = lambda evs: sorted({e["Actor"]["Attributes"]["name"] for e in evs})  # noqa: E731
    after = [json.loads(x) for x in ok(minirt("events", "--since", stamp, "--until", "0s", "--format", "json")).splitlines()]
    before = [json.loads(x) for x in ok(minirt("events", "--until", stamp, "--format", "json")).splitlines()]
    assert names(after) == ["second"] and len(after) == 4
    assert names(before) == ["first"] and len(before) == 4
    # RFC3339 in UTC and a relative duration
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(between)) + f".{int(between % 1 * 1e9):09d}Z"
    out = ok(minirt("events", "--since", iso, "--until", "0s", "--filter", "event=start", "--format", "json"))
    assert [json.loads(x)["Actor"]["Attributes"]["name"] for x in out.splitlines()] == ["second"]
    assert len(history(minirt)) == 8
    out = ok(minirt("events", "--since", "1h", "--until", "0s", "--filter", "event=die"))
    assert out.count("container die") == 2
    # an --until in the future: what comes until then, then exit
    t0 = time.monotonic()
    out = ok(minirt("events", "--until", "-1s", "--filter", "event=destroy"))
    assert 0.9 < time.monotonic() - t0 < 5 and out.count("destroy") == 2
    # errors are one line and 125
    r = minirt("events", "--since", "yesterday")
    assert r.returncode == 125 and r.stderr == "minirt: failed to parse value as time or duration: 'yesterday'\n"
    r = minirt("events", "--filter", "label=x")
    assert r.returncode == 125 and "invalid filter 'label'" in r.stderr


def _reader(stream, q: queue.Queue) -> None:
    for line in stream:
        q.put(line)


def test_a_live_follower_prints_a_run_as_it_happens(minirt):
    ok(minirt("network", "create", "--subnet", "10.94.0.0/24", "pre"))  # events.log exists now
    follower = minirt.popen("events", "--format", "json", "--filter", "type=container")
    try:
        # ready once it holds the log open (nsenter execs minirt: the Popen pid is minirt's)
        log = os.path.realpath(f"{minirt.root}/events.log")

        def holds_log() -> bool:
            try:
                return any(os.path.realpath(f"/proc/{follower.pid}/fd/{fd}") == log
                           for fd in os.listdir(f"/proc/{follower.pid}/fd"))  # fmt: skip
            except FileNotFoundError:
                return False

        wait_for(holds_log, what="the follower to open the log")
        q: queue.Queue = queue.Queue()
        threading.Thread(target=_reader, args=(follower.stdout, q), daemon=True).start()
        r = minirt("run", "--rm", "--net", "none", "--name", "live", "--", "sh", "-c", "exit 7")
        assert r.returncode == 7
        got = []
        deadline = time.monotonic() + 10
        while len(got) < 4 and time.monotonic() < deadline:
            try:
                got.append(json.loads(q.get(timeout=0.5)))
            except queue.Empty:
                pass
        assert actions(got) == ["container create", "container start", "container die", "container destroy"]
        assert got[2]["Actor"]["Attributes"]["exitCode"] == "7"
        assert follower.poll() is None  # still following
    finally:
        follower.terminate()
        follower.wait(10)
    ok(minirt("network", "rm", "pre"))
