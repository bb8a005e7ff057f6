"""The teardown plan and reconcile, without root: plans as data, the executor's order and error
collection, finalizing a dead record, the value-checked unpublish and the element listing."""

import json
import os

import pytest

from minirt import teardown
from minirt.errors import CleanupError, FirewallError
from minirt.net import netlink
from minirt.net.firewall import ports as fwports
from minirt.net.ports import PortMapping
from minirt.state import Store

CID = "3f2a9c1e0d4f" + "0" * 52


def test_bridge_steps_are_known_before_anything_is_allocated():
    assert teardown.network_steps("minirt", teardown.host_ifname(CID)) == [
        {"undo": "lease", "network": "minirt"},
        {"undo": "veth", "network": "minirt", "ifname": "mr3f2a9c1e0d4f"},
    ]
    step = teardown.ports_step("lab", "nftables", [("ports_any", "tcp . 8080", "10.88.0.2 . 80")])
    assert step == {"undo": "ports", "network": "lab", "firewall": "nftables",
                    "elements": [["ports_any", "tcp . 8080", "10.88.0.2 . 80"]]}  # fmt: skip
    json.dumps(step)  # data, not objects: it goes into state.json as it is


def test_plan_of_a_record_written_before_plans_existed():
    rec = {"id": CID, "config": {"net": "bridge"},
           "network": {"network": "minirt", "address": "10.88.0.2",
                       "ports": [PortMapping("0.0.0.0", 8080, 80, "tcp").to_dict()]},
           "connected": [{"network": "lab", "host_ifname": "mr3f2a9c1e0d4x1"}]}  # fmt: skip
    plan = teardown.plan_of(rec)
    assert [s["undo"] for s in plan] == ["lease", "veth", "ports", "lease", "veth"]
    assert plan[2]["elements"] == [["ports_any", "tcp . 8080", "10.88.0.2 . 80"]]
    assert plan[4]["ifname"] == "mr3f2a9c1e0d4x1"
    assert teardown.plan_of({"id": CID, "config": {"net": "none"}}) == []
    assert teardown.plan_of({"teardown": []}) == []


def test_carry_out_goes_newest_first_and_keeps_going_past_failures(monkeypatch):
    done = []

    def ok(_root, _cid, step, netns_gone, _firewall):
        done.append((step["n"], netns_gone))

    def boom(_root, _cid, step, _netns_gone, _firewall):
        done.append((step["n"], "boom"))
        raise OSError("refused")

    monkeypatch.setitem(teardown._UNDO, "ok", ok)
    monkeypatch.setitem(teardown._UNDO, "boom", boom)
    steps = [{"undo": "ok", "n": 1}, {"undo": "boom", "n": 2}, {"undo": "ok", "n": 3}]
    left, failures = teardown.carry_out("/nonexistent", CID, steps, netns_gone=True)
    assert done == [(3, True), (2, "boom"), (1, True)]
    assert left == [steps[1]]
    assert failures == ["undo boom: refused"]


def test_the_veth_of_a_reaped_container_is_left_to_the_kernel(monkeypatch):
    deleted = []
    monkeypatch.setattr(netlink, "index_of", lambda name: 7)
    monkeypatch.setattr(netlink, "delete_host_link", deleted.append)
    step = {"undo": "veth", "network": "minirt", "ifname": "mr3f2a9c1e0d4f"}
    teardown.carry_out("/x", CID, [step], netns_gone=True)
    assert deleted == []
    teardown.carry_out("/x", CID, [step], netns_gone=False)
    assert deleted == ["mr3f2a9c1e0d4f"]
    monkeypatch.setattr(netlink, "index_of", lambda name: None)
    teardown.carry_out("/x", CID, [step], netns_gone=False)  # gone already: nothing to do
    assert deleted == ["mr3f2a9c1e0d4f"]


def _dead_record(store: Store, rm: bool, steps: list) -> dict:
    os.makedirs(store.container_dir(CID))
    rec = {"id": CID, "name": "web", "status": "running", "config": {"rm": rm, "net": "bridge"},
           "owner": {"pid": 2**22 + 7, "start_time": 1}, "pid": 2**22 + 9, "start_time": 1,
           "exit_code": None, "teardown": steps}  # fmt: skip
    store.register(rec)
    return rec


@pytest.mark.parametrize("rm", [False, True])
def test_finalize_dead_carries_out_the_plan_then_records_the_exit(tmp_path, monkeypatch, rm):
    store = Store(str(tmp_path))
    seen = []
    monkeypatch.setitem(teardown._UNDO, "fake", lambda _r, cid, step, gone, _fw: seen.append((cid, step["n"], gone)))
    _dead_record(store, rm, [{"undo": "fake", "n": 1}, {"undo": "fake", "n": 2}])
    assert teardown.finalize_dead(store, CID) is True
    assert seen == [(CID, 2, False), (CID, 1, False)]  # a dead owner's veth is deleted explicitly
    if rm:
        assert not os.path.exists(store.container_dir(CID)) and store.name_owner("web") is None
    else:
        rec = store.load(CID)
        assert (rec["status"], rec["exit_code"], rec["pid"], rec["teardown"]) == ("exited", 137, 0, [])
    assert teardown.finalize_dead(store, CID) is False  # nothing left to do


def test_finalize_dead_keeps_failed_steps_and_a_record_for_gc(tmp_path, monkeypatch):
    store = Store(str(tmp_path))

    def boom(*_a):
        raise OSError("busy")

    monkeypatch.setitem(teardown._UNDO, "boom", boom)
    _dead_record(store, True, [{"undo": "boom"}])
    with pytest.raises(CleanupError, match="busy"):
        teardown.finalize_dead(store, CID)
    rec = store.load(CID)  # --rm, but not removed: gc retries the step
    assert rec["status"] == "exited" and rec["teardown"] == [{"undo": "boom"}]


def test_finalize_dead_leaves_a_container_its_new_owner_restarted(tmp_path, monkeypatch):
    store = Store(str(tmp_path))
    monkeypatch.setitem(teardown._UNDO, "fake", lambda *a: pytest.fail("must not run"))
    _dead_record(store, False, [{"undo": "fake"}])
    assert teardown.finalize_dead(store, CID, expect_owner={"pid": 1, "start_time": 99}) is False
    assert store.load(CID)["status"] == "running"


class FakeNft:
    """Stands in for a libnftables context for text scripts: a dict of map elements, refusing an
    add whose key maps to another value (EEXIST), as the kernel does; one script = one
    transaction."""

    def __init__(self, elements: dict):
        self.elements = dict(elements)
        self.scripts = []

    def cmd(self, script: str):
        self.scripts.append(script)
        new = dict(self.elements)
        for line in script.splitlines():
            if line.startswith("add element inet minirt "):
                name, rest = line[len("add element inet minirt ") :].split(" ", 1)
                key, value = rest.strip("{} ").split(" : ")
                if new.get((name, key), value) != value:
                    return 1, "", "Error: Could not process rule: File exists"
                new[(name, key)] = value
            elif line.startswith("delete element inet minirt "):
                name, rest = line[len("delete element inet minirt ") :].split(" ", 1)
                new.pop((name, rest.strip("{} ")), None)
        self.elements = new
        return 0, "", ""


def test_unpublish_deletes_ours_and_leaves_a_key_another_container_took(monkeypatch):
    ours = [("ports_any", "tcp . 8080", "10.88.0.2 . 80"), ("ports_any", "tcp . 8081", "10.88.0.2 . 81")]
    fake = FakeNft({("ports_any", "tcp . 8080"): "10.88.0.2 . 80", ("ports_any", "tcp . 8081"): "10.88.0.7 . 81"})
    monkeypatch.setattr(fwports, "listed", lambda: dict(fake.elements))
    from minirt.net.firewall import libnft

    monkeypatch.setattr(libnft, "_ctx", fake)
    fwports.unpublish(ours)
    # the one transaction was refused; then each element on its own: ours went, theirs stayed
    assert fake.elements == {("ports_any", "tcp . 8081"): "10.88.0.7 . 81"}
    assert len(fake.scripts) == 3


class Refusing:
    def __init__(self):
        self.scripts = []

    def cmd(self, script):
        self.scripts.append(script)
        return 1, "", "Error: Could not process rule: No such file or directory"


def test_unpublish_raises_when_the_refusal_is_not_about_ownership(monkeypatch):
    from minirt.net.firewall import libnft

    monkeypatch.setattr(libnft, "_ctx", Refusing())
    ours = ("ports_any", "tcp . 8080", "10.88.0.2 . 80")
    monkeypatch.setattr(fwports, "listed", lambda: {ours[:2]: ours[2]})  # still ours in the kernel
    with pytest.raises(FirewallError):
        fwports.unpublish([ours])


def test_unpublish_of_an_element_whose_map_is_gone_is_done_and_declares_nothing(monkeypatch):
    """The table was removed behind our back (or by gc): nothing is left to unpublish, and the
    teardown must not bring the port machinery back (no add table/map/chain/rule)."""
    from minirt.net.firewall import libnft

    refusing = Refusing()
    monkeypatch.setattr(libnft, "_ctx", refusing)
    monkeypatch.setattr(fwports, "listed", lambda: {})  # no table: nothing published
    fwports.unpublish([("ports_any", "tcp . 8080", "10.88.0.2 . 80")])
    lines = [line for script in refusing.scripts for line in script.splitlines()]
    assert lines and all(line.startswith(("add element", "delete element")) for line in lines), lines


def test_listed_renders_elements_as_nft_takes_them(monkeypatch):
    listing = {"nftables": [
        {"metainfo": {"json_schema_version": 1}},
        {"table": {"family": "inet", "name": "minirt"}},
        {"map": {"family": "inet", "table": "minirt", "name": "ports_any", "type": ["inet_proto", "inet_service"],
                 "map": "concat", "elem": [[{"concat": ["tcp", 8080]}, {"concat": ["10.88.0.2", 80]}]]}},
        {"map": {"family": "inet", "table": "minirt", "name": "ports6_ip",
                 "elem": [[{"concat": ["2001:db8::1", "udp", 53]}, {"concat": ["fd00:77::2", 53]}]]}},
        {"map": {"family": "inet", "table": "minirt", "name": "fwd_in", "elem": [["minirt0", {"jump": "x"}]]}},
    ]}  # fmt: skip

    class Ctx:
        def set_json_output(self, on):
            self.json = on

        def cmd(self, script):
            assert script == "list table inet minirt" and self.json
            return 0, json.dumps(listing), ""

    from minirt.net.firewall import libnft

    monkeypatch.setattr(libnft, "_ctx", Ctx())
    assert fwports.listed() == {
        ("ports_any", "tcp . 8080"): "10.88.0.2 . 80",
        ("ports6_ip", "2001:db8::1 . udp . 53"): "fd00:77::2 . 53",
    }
    # and what the plan records for those ports is the same text
    assert fwports.elements([PortMapping("0.0.0.0", 8080, 80, "tcp")], "10.88.0.2") == [
        ("ports_any", "tcp . 8080", "10.88.0.2 . 80")
    ]


def test_gc_retries_the_failed_steps_of_an_exited_container(tmp_path, monkeypatch):
    from minirt import reconcile

    store = Store(str(tmp_path))
    calls = []

    def flaky(*_a):
        calls.append(1)
        if len(calls) == 1:
            raise OSError("busy")

    monkeypatch.setitem(teardown._UNDO, "flaky", flaky)
    monkeypatch.setattr(reconcile, "findings", lambda store: [])
    _dead_record(store, True, [{"undo": "flaky"}])
    with pytest.raises(CleanupError):
        teardown.finalize_dead(store, CID)
    assert store.load(CID)["status"] == "exited"
    assert reconcile.gc(store, dry_run=True) == [
        f"container {CID[:12]}: exited with 1 failed teardown step(s); "
        "carry out its teardown plan, then remove it (--rm)"
    ]
    assert len(calls) == 1  # a dry run changes nothing
    reconcile.gc(store)
    assert len(calls) == 2 and not os.path.exists(store.container_dir(CID))
