"""The nftables backend against the kernel, in a throwaway netns: idempotence, atomicity,
coexistence (read back with `nft -j`, not from minirt's records)."""

import json
import sys

from tests.conftest import REPO

SCRIPT = """
import sys
sys.path.insert(0, {repo!r})
from minirt.net.firewall import NetworkSpec, FirewallError
from minirt.net.firewall.nftables import NftablesBackend
b = NftablesBackend()
a = NetworkSpec("a", "br-a", "10.1.0.0/24", "10.1.0.1")
c = NetworkSpec("c", "br-c", "10.2.0.0/24", "10.2.0.1")
bad = NetworkSpec("bad", "br-bad", "10.3.0.0/33", "10.3.0.1")
for step in sys.argv[1:]:
    if step == "bad":
        try:
            b.setup_network(bad)
        except FirewallError as e:
            print("refused:", e, "|", len(e.batch_text.splitlines()))
    else:
        verb, name = step.split(":")
        getattr(b, verb + "_network")({{"a": a, "c": c}}[name])
"""


def run(host, *steps):
    r = host.run(sys.executable, "-c", SCRIPT.format(repo=REPO), *steps)
    return r.stdout


def ruleset(host):
    """The whole ruleset as the kernel lists it, without handles (re-created rules get new ones)."""
    objs = json.loads(host.run("nft", "-j", "list", "ruleset").stdout)["nftables"][1:]  # [0] is metainfo
    for o in objs:
        for body in o.values():
            body.pop("handle", None)
    return objs


def test_idempotent_coexisting_and_atomic(host_ns):
    h = host_ns
    h.run("nft", "add", "table", "inet", "userfw")
    h.run("nft", "add", "chain", "inet", "userfw", "guard", "{ type filter hook forward priority 0; policy accept; }")
    h.run("nft", "add", "rule", "inet", "userfw", "guard", "tcp", "dport", "2222", "counter", "accept")
    user = h.run("nft", "-j", "list", "table", "inet", "userfw").stdout

    run(h, "setup:a")
    once = ruleset(h)
    run(h, "setup:a")
    assert ruleset(h) == once  # applying the same network twice changes nothing

    run(h, "setup:c")
    out = run(h, "bad")
    assert out.startswith("refused: nft set up network bad:") and "| " in out
    both = ruleset(h)
    assert not any("net-bad" in json.dumps(o) for o in both)  # all or nothing

    run(h, "teardown:a")
    after = json.dumps(ruleset(h))
    assert "net-a-" not in after and "br-a" not in after
    assert "net-c-nat" in after and "br-c" in after  # the other network is untouched
    run(h, "teardown:a")  # tearing down twice is fine
    assert h.run("nft", "-j", "list", "table", "inet", "userfw").stdout == user
