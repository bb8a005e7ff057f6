"""The event log: Docker's event shape, appends under flock from many processes, rotation, the
reader that follows across it, --since/--until parsing, --filter rules and the text line."""

import contextlib
import json
import multiprocessing
import os
import time

import pytest

from minirt import eventlog, events
from minirt.errors import ConfigError

CID = "3f2a9c1e0d4f" + "0" * 52


@contextlib.contextmanager
def timezone(tz: str):
    """The process's local time zone is `tz` inside the block (TZ + tzset), as before after."""
    old = os.environ.get("TZ")
    os.environ["TZ"] = tz
    time.tzset()
    try:
        yield
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


@pytest.fixture
def utc():
    with timezone("UTC"):
        yield


def lines_of(root) -> list[dict]:
    out = []
    for name in ("events.log.1", "events.log"):
        try:
            with open(f"{root}/{name}") as f:
                out += [json.loads(line) for line in f]
        except FileNotFoundError:
            pass
    return out


def test_a_line_is_dockers_message_shape_and_json_reads_it():
    line = events.encode("container", "die", CID, {"name": "web", "exitCode": 3, "image": "/r\"f"}, 1_700_000_000_123456789)
    assert line.endswith(b"}\n") and line.count(b"\n") == 1
    ev = json.loads(line)
    assert ev == {"Type": "container", "Action": "die",
                  "Actor": {"ID": CID, "Attributes": {"exitCode": "3", "image": "/r\"f", "name": "web"}},
                  "scope": "local", "time": 1_700_000_000, "timeNano": 1_700_000_000_123456789}  # fmt: skip
    # Docker's field order; attributes sorted, as Go encodes a map
    assert list(ev) == ["Type", "Action", "Actor", "scope", "time", "timeNano"]
    assert list(ev["Actor"]["Attributes"]) == ["exitCode", "image", "name"]
    # non-ASCII is escaped (one byte per char on disk, like json.dumps' default)
    assert json.loads(events.encode("network", "create", "n", {"name": "é"}, 1))["Actor"]["Attributes"]["name"] == "é"


def test_container_and_network_helpers(tmp_path):
    rec = {"id": CID, "name": "web", "config": {"rootfs": "/srv/rootfs"}}
    events.container(str(tmp_path), "kill", rec, signal=15)

    class Net:
        name, id = "backend", "ab" * 32

    events.network(str(tmp_path), "connect", Net, CID)
    kill, connect = lines_of(tmp_path)
    assert kill["Actor"] == {"ID": CID, "Attributes": {"image": "/srv/rootfs", "name": "web", "signal": "15"}}
    assert connect["Type"] == "network" and connect["Actor"] == {
        "ID": "ab" * 32, "Attributes": {"container": CID, "name": "backend", "type": "bridge"}}  # fmt: skip
    assert oct(os.stat(tmp_path / "events.log").st_mode & 0o777) == "0o600"


def test_emit_creates_a_missing_root_and_never_raises(tmp_path):
    root = tmp_path / "not" / "yet"
    events.emit(str(root), "network", "create", "x", {})
    assert len(lines_of(root)) == 1
    (tmp_path / "file").write_text("")
    events.emit(str(tmp_path / "file"), "network", "create", "x", {})  # ENOTDIR: lost, not raised


def test_rotation_keeps_one_old_file_and_readers_see_both_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(events, "MAX_SIZE", 4096)
    root = str(tmp_path)
    for i in range(200):
        events.emit(root, "container", "start", CID, {"n": i})
    assert os.path.exists(f"{root}/events.log.1")
    assert os.path.getsize(f"{root}/events.log.1") <= 4096 + 300
    if os.path.exists(f"{root}/events.log"):  # created again by the next event after a rotation
        assert os.path.getsize(f"{root}/events.log") <= 4096 + 300
    seen = [int(ev["Actor"]["Attributes"]["n"]) for ev in lines_of(tmp_path)]
    assert seen == list(range(seen[0], 200)) and seen[0] > 0  # the oldest went, nothing in between
    r = eventlog.Reader(root, history=True)
    got = [int(json.loads(line)["Actor"]["Attributes"]["n"]) for line in r.lines()]
    r.close()
    assert got == seen


def _writer(root: str, n: int, max_size: int) -> None:
    events.MAX_SIZE = max_size
    for i in range(300):
        events.emit(root, "container", "start", CID, {"proc": str(n), "i": str(i), "pad": "x" * (n * 7)})


@pytest.mark.parametrize("max_size", [1 << 20, 16384], ids=["no-rotation", "rotating"])
def test_concurrent_appends_from_processes_are_whole_lines(tmp_path, max_size):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), n, max_size)) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    evs = lines_of(tmp_path)  # json.loads of every line: a torn or interleaved line would fail
    per = {}
    for ev in evs:
        a = ev["Actor"]["Attributes"]
        assert a["pad"] == "x" * (int(a["proc"]) * 7)
        per.setdefault(a["proc"], []).append(int(a["i"]))
    for seq in per.values():  # each writer's events in its order, none lost between kept ones
        assert seq == list(range(seq[0], 300))
    if max_size == 1 << 20:
        assert len(evs) == 1200 and not os.path.exists(tmp_path / "events.log.1")
    else:
        with open(tmp_path / "events.log.1", "rb") as f:
            longest = max(len(line) for line in f)
        assert os.path.getsize(tmp_path / "events.log.1") <= max_size + longest  # renamed past the size


def test_a_follower_reads_across_rotation_without_loss(tmp_path, monkeypatch):
    monkeypatch.setattr(events, "MAX_SIZE", 2048)
    root = str(tmp_path)
    events.emit(root, "container", "create", CID, {"n": 0})
    r = eventlog.Reader(root, history=False)  # only new events: starts at the end
    got = []
    for i in range(1, 60):
        events.emit(root, "container", "start", CID, {"n": i})
        if i % 7 == 0:  # the follower polls now and then; rotations happen in between
            got += r.lines()
    got += r.lines()
    r.close()
    assert [int(json.loads(x)["Actor"]["Attributes"]["n"]) for x in got] == list(range(1, 60))


def test_a_follower_before_the_first_event_and_a_partial_line(tmp_path):
    root = str(tmp_path)
    r = eventlog.Reader(root, history=False)
    assert r.lines() == []
    with open(f"{root}/events.log", "ab") as f:
        f.write(b'{"Type":"container"')  # a write in progress (never happens with one write, but be safe)
    assert r.lines() == []
    with open(f"{root}/events.log", "ab") as f:
        f.write(b',"Action":"x"}\n')
    assert r.lines() == [b'{"Type":"container","Action":"x"}']
    r.close()


def test_last_action_finds_the_newest_start_or_die(tmp_path):
    root = str(tmp_path)
    other = "f" * 64
    assert eventlog.last_action(root, CID, ("start", "die")) is None
    events.emit(root, "container", "create", CID, {})
    assert eventlog.last_action(root, CID, ("start", "die")) is None
    events.emit(root, "container", "start", CID, {})
    events.emit(root, "container", "die", other, {})
    assert eventlog.last_action(root, CID, ("start", "die")) == "start"
    events.emit(root, "container", "die", CID, {"exitCode": "0"})
    events.emit(root, "container", "destroy", CID, {})
    assert eventlog.last_action(root, CID, ("start", "die")) == "die"
    os.replace(f"{root}/events.log", f"{root}/events.log.1")  # rotated: the old file is read too
    assert eventlog.last_action(root, CID, ("start", "die")) == "die"


# --- --since / --until ---------------------------------------------------------------------------

NOW = 1_700_000_000_500_000_000


@pytest.mark.parametrize("value, ns", [
    ("10m", NOW - 600 * 10**9),
    ("1h30m", NOW - 5400 * 10**9),
    ("1.5h", NOW - 5400 * 10**9),
    ("500ms", 1_700_000_000_000_000_000),
    ("0s", NOW),
    ("-1m", NOW + 60 * 10**9),  # a negative duration is in the future
    ("1700000000", 1_700_000_000_000_000_000),
    ("1700000000.25", 1_700_000_000_250_000_000),
    ("1700000000.000000001", 1_700_000_000_000_000_001),
    ("0", 0),
    ("2023-11-14T22:13:20Z", 1_700_000_000_000_000_000),
    ("2023-11-14T22:13:20.123456789Z", 1_700_000_000_123_456_789),
    ("2023-11-14T23:13:20+01:00", 1_700_000_000_000_000_000),
    ("2023-11-14T21:13:20.5-01:00", 1_700_000_000_500_000_000),
    ("2023-11-14T22:13:20", 1_700_000_000_000_000_000),  # local time (UTC in this test)
    ("2023-11-14T22:13", 1_699_999_980_000_000_000),
    ("2023-11-14T22", 1_699_999_200_000_000_000),
    ("2023-11-14", 1_699_920_000_000_000_000),
    ("2023-11-14Z", 1_699_920_000_000_000_000),
])  # fmt: skip
def test_parse_time_takes_dockers_forms(utc, value, ns):
    assert eventlog.parse_time(value, NOW) == ns


def test_parse_time_local_zone():
    with timezone("EST+5"):
        assert eventlog.parse_time("2023-11-14T17:13:20", NOW) == 1_700_000_000_000_000_000


@pytest.mark.parametrize("value", ["yesterday", "10x", "2023-13-01", "2023-11-14T25:00", "1.2.3", "", "m"])
def test_parse_time_refuses_the_rest(utc, value):
    with pytest.raises(ConfigError):
        eventlog.parse_time(value, NOW)


# --- --filter -------------------------------------------------------------------------------------


def ev(type_, action, aid, **attrs) -> dict:
    return {"Type": type_, "Action": action, "Actor": {"ID": aid, "Attributes": attrs}, "timeNano": 1}


WEB_START = ev("container", "start", CID, name="web")
WEB_DIE = ev("container", "die", CID, name="web", exitCode="0")
DB_START = ev("container", "start", "e" * 64, name="db")
NET_CONNECT = ev("network", "connect", "ab" * 32, name="backend", type="bridge", container=CID)


def which(*specs) -> list[dict]:
    f = eventlog.parse_filters(list(specs))
    return [e for e in (WEB_START, WEB_DIE, DB_START, NET_CONNECT) if eventlog.matches(e, f)]


def test_filters_same_key_or_different_keys_and():
    assert which() == [WEB_START, WEB_DIE, DB_START, NET_CONNECT]
    assert which("event=start") == [WEB_START, DB_START]
    assert which("event=start", "event=die") == [WEB_START, WEB_DIE, DB_START]
    assert which("event=start", "container=web") == [WEB_START]
    assert which("type=network") == [NET_CONNECT]
    assert which("type=container", "type=network", "event=connect") == [NET_CONNECT]
    # by name or id, and an id prefix (Docker's FuzzyMatch)
    assert which("container=3f2a9c1e0d4f") == [WEB_START, WEB_DIE]
    assert which("container=web", "container=db") == [WEB_START, WEB_DIE, DB_START]
    assert which("network=backend") == [NET_CONNECT]
    assert which("network=abab") == [NET_CONNECT]
    # as in Docker, a container filter does not select the network events that name it
    assert which("container=web", "type=network") == []


@pytest.mark.parametrize("spec, msg", [("image=x", "invalid filter 'image'"), ("event", "expected name=value"),
                                       ("=x", "expected name=value")])  # fmt: skip
def test_bad_filters_are_refused(spec, msg):
    with pytest.raises(ConfigError, match=msg):
        eventlog.parse_filters([spec])


# --- output ---------------------------------------------------------------------------------------


def test_text_line_is_the_docker_clis(utc):
    e = dict(WEB_DIE, timeNano=1_700_000_000_000_000_042)
    assert eventlog.format_text(e) == f"2023-11-14T22:13:20.000000042Z container die {CID} (exitCode=0, name=web)"
    e = ev("network", "destroy", "n1")
    e["timeNano"] = 1_700_000_000_000_000_000
    assert eventlog.format_text(e) == "2023-11-14T22:13:20.000000000Z network destroy n1"


def test_text_line_has_the_local_offset():
    with timezone("CET-1"):
        assert eventlog.format_time(1_700_000_000_000_000_000) == "2023-11-14T23:13:20.000000000+01:00"


def test_stream_with_since_and_until_prints_the_window_and_returns(tmp_path, utc):
    root = str(tmp_path)
    for i, t in enumerate((100, 200, 300, 400)):
        line = events.encode("container", "start" if i % 2 == 0 else "die", CID, {"name": "web"}, t * 10**9)
        events.append(f"{root}/events.log", line)
    out = []
    t0 = time.monotonic()
    eventlog.stream(root, out.append, since=200 * 10**9, until=300 * 10**9)
    assert time.monotonic() - t0 < 1
    assert out == [f"1970-01-01T00:03:20.000000000Z container die {CID} (name=web)",
                   f"1970-01-01T00:05:00.000000000Z container start {CID} (name=web)"]  # fmt: skip
    out = []
    eventlog.stream(root, out.append, until=250 * 10**9, filters={"event": {"start"}}, as_json=True)
    assert [json.loads(x)["time"] for x in out] == [100]


def test_a_dead_container_gets_one_die_and_only_after_a_start(tmp_path):
    """teardown.finalize_dead's rule: die (137) if the log's last start/die of the container is a
    start; nothing if its owner wrote die already, or never wrote start."""
    from minirt import teardown

    root = str(tmp_path)
    rec = {"id": CID, "name": "web", "config": {"rootfs": "/r"}, "oom_killed": True}
    teardown._announce_death(root, rec, 137)  # killed while being created: no start, no die
    assert lines_of(tmp_path) == []
    events.container(root, "create", rec)
    events.container(root, "start", rec)
    teardown._announce_death(root, rec, 137)
    teardown._announce_death(root, rec, 137)  # a second finalizer finds the die: nothing more
    acts = [(e["Action"], e["Actor"]["Attributes"].get("exitCode")) for e in lines_of(tmp_path)]
    assert acts == [("create", None), ("start", None), ("oom", None), ("die", "137")]
