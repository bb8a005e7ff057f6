"""What minirt sends to nftables, pinned byte for byte: the JSON batches and their `nft` rendering.

Regenerate after an intended change with UPDATE_GOLDEN=1 and review the diff.
"""

import json
import os

import pytest

from minirt.net.firewall import NetworkSpec, ruleset
from minirt.net.firewall.render import render

GOLDEN = os.path.join(os.path.dirname(__file__), "golden")
NET = NetworkSpec("minirt", "minirt0", "172.17.0.0/16", "172.17.0.1")
LAB = NetworkSpec("lab", "mr-lab", "10.77.0.0/24", "10.77.0.1", internal=True)

CASES = {
    "setup_minirt": lambda: ruleset.setup_network_batch(NET),
    "teardown_minirt": lambda: ruleset.teardown_network_batch(NET),
    "setup_internal_lab": lambda: ruleset.setup_network_batch(LAB),
    "delete_table": ruleset.delete_table_batch,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name):
    batch = CASES[name]()
    got_json = json.dumps({"nftables": batch}, indent=1, sort_keys=True) + "\n"
    got_nft = "\n".join(render(batch)) + "\n"
    for ext, got in (("json", got_json), ("nft", got_nft)):
        path = os.path.join(GOLDEN, f"{name}.{ext}")
        if os.environ.get("UPDATE_GOLDEN"):
            with open(path, "w") as f:
                f.write(got)
        with open(path) as f:
            assert got == f.read(), f"{path} differs (UPDATE_GOLDEN=1 to regenerate after review)"


def test_setup_is_the_same_batch_every_time_and_declares_before_flushing():
    assert ruleset.setup_network_batch(NET) == ruleset.setup_network_batch(NET)
    batch = ruleset.setup_network_batch(NET)
    declared = set()
    for cmd in batch:
        (verb, body), = cmd.items()
        (kind, obj), = body.items()
        if verb == "add" and kind == "chain":
            declared.add(obj["name"])
        if verb == "flush":
            assert obj["name"] in declared


def test_teardown_declares_every_object_before_deleting_it():
    batch = ruleset.teardown_network_batch(NET)
    added = []
    for cmd in batch:
        (verb, body), = cmd.items()
        (kind, obj), = body.items()
        key = (kind, obj.get("name"), json.dumps(obj.get("elem")))
        if verb == "add":
            added.append(key)
        if verb == "delete":
            assert key in added, f"deletes {key} without declaring it first"


def test_internal_network_has_no_masquerade_and_drops_egress():
    text = "\n".join(render(ruleset.setup_network_batch(LAB)))
    assert "masquerade" not in text
    assert 'net-lab-out oifname != "mr-lab" drop' in text


def test_render_refuses_what_it_does_not_know():
    with pytest.raises(ValueError):
        render([{"add": {"rule": {"family": "inet", "table": "minirt", "chain": "x", "expr": [{"queue": {}}]}}}])
