"""What minirt sends to nftables, pinned byte for byte: the JSON batches and their `nft` rendering
(CNI's knftables Fake + Dump, moby's testdata/*.golden). No root, no kernel: the integration
test tests/integration/test_firewall_nft.py applies the same batches to a real one.

After an intended change: UPDATE_GOLDEN=1 pytest tests/unit/test_ruleset_golden.py, review the
diff of tests/unit/golden/, commit it.
"""

import json
import os
import shlex
import subprocess
import sys

import pytest

from minirt import explain
from minirt.errors import ConfigError, MinirtError, NetworkError
from minirt.net.firewall import FirewallError, NetworkSpec, get_backend, ruleset
from minirt.net.firewall import libnft
from minirt.net.firewall import nftables as nft_backend
from minirt.net.firewall.none import NoFirewall
from minirt.net.firewall.render import render, script

GOLDEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "golden")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NET = NetworkSpec("minirt", "minirt0", "172.17.0.0/16", "172.17.0.1")
LAB = NetworkSpec("lab", "mr-lab", "10.77.0.0/24", "10.77.0.1", internal=True)
NOICC = NetworkSpec("quiet", "br-quiet", "10.78.0.0/24", "10.78.0.1", icc=False)
DUAL = NetworkSpec("dual", "br-dual", "10.79.0.0/24", "10.79.0.1", subnet6="fd00:78::/64", gateway6="fd00:78::1")

CASES = {
    "setup_minirt": lambda: ruleset.setup_network_batch(NET),
    "teardown_minirt": lambda: ruleset.teardown_network_batch(NET),
    "setup_internal_lab": lambda: ruleset.setup_network_batch(LAB),
    "teardown_internal_lab": lambda: ruleset.teardown_network_batch(LAB),
    "setup_noicc_quiet": lambda: ruleset.setup_network_batch(NOICC),
    "delete_table": ruleset.delete_table_batch,
    "setup_dual_stack": lambda: ruleset.setup_network_batch(DUAL),
    "teardown_dual_stack": lambda: ruleset.teardown_network_batch(DUAL),
}


def parts(cmd: dict) -> tuple[str, str, dict]:
    ((verb, body),) = cmd.items()
    ((kind, obj),) = body.items()
    return verb, kind, obj


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name):
    batch = CASES[name]()
    got = {
        "json": json.dumps({"nftables": batch}, indent=1, sort_keys=True) + "\n",
        "nft": "\n".join(render(batch)) + "\n",
    }
    for ext, text in got.items():
        path = os.path.join(GOLDEN, f"{name}.{ext}")
        if os.environ.get("UPDATE_GOLDEN"):
            with open(path, "w") as f:
                f.write(text)
        with open(path) as f:
            assert text == f.read(), f"{path} differs (UPDATE_GOLDEN=1 regenerates it; review the diff)"


@pytest.mark.parametrize("name", sorted(CASES))
def test_shell_lines_are_the_script_lines_once_the_shell_has_read_them(name):
    batch = CASES[name]()
    for shell_line, script_line in zip(render(batch), script(batch), strict=True):
        words = shlex.split(shell_line)
        assert words[0] == "nft"
        assert " ".join(words[1:]) == script_line


def test_setup_is_the_same_batch_every_time():
    assert json.dumps(ruleset.setup_network_batch(NET)) == json.dumps(ruleset.setup_network_batch(NET))
    assert render(ruleset.setup_network_batch(NET)) == render(ruleset.setup_network_batch(NET))


def test_setup_declares_and_flushes_every_chain_before_adding_rules():
    """`add rule` is the only non-idempotent command: each chain that gets rules is declared
    and flushed earlier in the same batch, so applying the batch twice gives the same ruleset."""
    declared, flushed = set(), set()
    for cmd in ruleset.setup_network_batch(NET):
        verb, kind, obj = parts(cmd)
        if kind == "chain" and verb == "add":
            declared.add(obj["name"])
        if kind == "chain" and verb == "flush":
            assert obj["name"] in declared
            flushed.add(obj["name"])
        if kind == "rule":
            assert obj["chain"] in flushed, f"rule added to {obj['chain']} without a flush first"
        assert verb != "delete"


def test_teardown_declares_every_object_before_deleting_it():
    added = []
    for cmd in ruleset.teardown_network_batch(NET):
        verb, kind, obj = parts(cmd)
        key = (kind, obj["name"], json.dumps(obj.get("elem")))
        if verb == "add":
            added.append(key)
        elif verb in ("delete", "flush"):
            assert key in added, f"{verb}s {key} without declaring it first"


def test_teardown_removes_elements_before_the_chains_they_jump_to_and_keeps_the_base():
    batch = ruleset.teardown_network_batch(NET)
    order = [(verb, kind, obj["name"]) for verb, kind, obj in map(parts, batch)]
    deleted_chains = [i for i, (verb, kind, _n) in enumerate(order) if verb == "delete" and kind == "chain"]
    deleted_elems = [i for i, (verb, kind, _n) in enumerate(order) if verb == "delete" and kind == "element"]
    assert len(deleted_elems) == len(ruleset.MAPS) == 4 and len(deleted_chains) == 4
    assert max(deleted_elems) < min(deleted_chains)
    assert {order[i][2] for i in deleted_chains} == {"net-minirt-in", "net-minirt-out", "net-minirt-nat",
                                                     "net-minirt-hairpin"}
    assert not any(verb in ("delete", "flush") and name in ("forward", "postrouting") for verb, _k, name in order)
    assert not any(kind in ("table", "map") and verb == "delete" for verb, kind, _n in order)


def test_every_rule_of_a_network_carries_its_ownership_mark():
    for net in (NET, LAB):
        for cmd in ruleset.setup_network_batch(net):
            verb, kind, obj = parts(cmd)
            if kind == "rule" and obj["chain"].startswith("net-"):
                comment = obj["comment"]
                assert comment == f"minirt:net:{net.name}" or comment.startswith(f"minirt:net:{net.name}:")
    text = "\n".join(render(ruleset.setup_network_batch(NET)))
    assert 'drop comment "minirt:net:minirt:unpublished"' in text


def test_internal_network_has_no_masquerade_and_drops_egress():
    text = "\n".join(render(ruleset.setup_network_batch(LAB)))
    assert "masquerade" not in text
    assert "nft add rule inet minirt net-lab-out 'oifname != \"mr-lab\" drop comment \"minirt:net:lab\"'" in text
    assert "nft add element inet minirt nat_out '{ \"mr-lab\" : jump net-lab-nat }'" in text  # empty chain


def test_rendering_matches_the_examples_of_the_design():
    text = render(ruleset.setup_network_batch(NetworkSpec("x", "minirt0", "172.17.0.0/16", "172.17.0.1")))
    assert "nft add table inet minirt" in text
    assert "nft add chain inet minirt forward '{ type filter hook forward priority filter; policy accept; }'" in text
    assert (
        "nft add rule inet minirt net-x-nat "
        "'oifname != \"minirt0\" ip saddr 172.17.0.0/16 masquerade comment \"minirt:net:x\"'"
    ) in text
    assert "nft add element inet minirt fwd_in '{ \"minirt0\" : jump net-x-in }'" in text
    assert "nft add rule inet minirt forward 'oifname vmap @fwd_in comment \"minirt:dispatch:into-bridge\"'" in text
    assert "nft flush chain inet minirt forward" in text  # plain words stay bare


@pytest.mark.parametrize(
    "spec, words",
    [
        (NetworkSpec("bad name", "br0", "10.0.0.0/24", "10.0.0.1"), "network name"),
        (NetworkSpec("a:b", "br0", "10.0.0.0/24", "10.0.0.1"), "network name"),
        (NetworkSpec("-x", "br0", "10.0.0.0/24", "10.0.0.1"), "network name"),
        (NetworkSpec("n" * 65, "br0", "10.0.0.0/24", "10.0.0.1"), "network name"),
        (NetworkSpec("q", 'br"0', "10.0.0.0/24", "10.0.0.1"), "bridge name"),
        (NetworkSpec("q", "br'0", "10.0.0.0/24", "10.0.0.1"), "bridge name"),
        (NetworkSpec("q", "b" * 16, "10.0.0.0/24", "10.0.0.1"), "bridge name"),
        (NetworkSpec("q", "", "10.0.0.0/24", "10.0.0.1"), "bridge name"),
        (NetworkSpec("q", "br0", "10.0.0.0/33", "10.0.0.1"), "IPv4 network"),
        (NetworkSpec("q", "br0", "10.0.0.300/24", "10.0.0.1"), "IPv4 network"),
        (NetworkSpec("q", "br0", "example.com/24", "10.0.0.1"), "IPv4 network"),
        (NetworkSpec("q", "br0", "fd00::/64", "fd00::1"), "IPv4 network"),
        (NetworkSpec("q", "br0", "10.0.0.0", "10.0.0.1"), "IPv4 network"),
        (NetworkSpec("q", "br0", "10.0.0.1/24", "10.0.0.1"), "host bits"),
    ],
)
def test_specs_nft_cannot_express_are_refused_before_anything_is_sent(spec, words):
    for build in (ruleset.setup_network_batch, ruleset.teardown_network_batch):
        with pytest.raises(ConfigError, match=words):
            build(spec)


def test_unusual_but_valid_specs_render_and_reparse():
    spec = NetworkSpec("n" * 64, "0br.x_y-z", "0.0.0.0/0", "10.0.0.1")
    batch = ruleset.setup_network_batch(spec)
    assert all(len(parts(c)[2].get("comment", "")) <= 128 for c in batch)  # nft's comment limit
    assert 'oifname != "0br.x_y-z" ip saddr 0.0.0.0/0 masquerade' in "\n".join(script(batch))


def test_render_refuses_what_it_does_not_know():
    rule = {"family": "inet", "table": "minirt", "chain": "x"}
    for cmd in (
        {"add": {"rule": {**rule, "expr": [{"queue": {}}]}}},
        {"add": {"rule": {**rule, "expr": [{"accept": None}], "comment": 'a"b'}}},
        {"add": {"rule": {**rule, "expr": [{"match": {"op": "<", "left": {"meta": {"key": "mark"}}, "right": "1"}}]}}},
        {"insert": {"rule": {**rule, "expr": [{"accept": None}]}}},
        {"add": {"set": {"family": "inet", "table": "minirt", "name": "s", "type": "ipv4_addr"}}},
    ):
        with pytest.raises(ValueError):
            render([cmd])


def test_firewall_error_is_one_line_with_the_batch_as_a_note():
    e = FirewallError("nft setup for network x: File exists", "nft add table inet minirt\nnft add map ...")
    assert isinstance(e, NetworkError) and isinstance(e, MinirtError) and e.exit_code == 125
    assert str(e) == "nft setup for network x: File exists"
    assert e.batch_text.splitlines() == ["nft add table inet minirt", "nft add map ..."]
    assert e.__notes__[0].endswith("\nnft add table inet minirt\nnft add map ...")


class FakeContext:
    """Stands in for nftables.Nftables: records the JSON, answers like libnftables 1.0.6."""

    def __init__(self, rc: int = 0, err: str = ""):
        self.rc, self.err, self.sent = rc, err, []

    def json_cmd(self, root):
        self.sent.append(root)
        return self.rc, "", self.err


def test_backend_sends_one_transaction_and_explains_it(monkeypatch, capfd):
    fake = FakeContext()
    monkeypatch.setattr(libnft, "_ctx", fake)
    monkeypatch.setattr(explain, "enabled", True)
    nft_backend.NftablesBackend().setup_network(NET)
    assert fake.sent == [{"nftables": ruleset.setup_network_batch(NET)}]
    err = capfd.readouterr().err
    assert err == "".join(f"+ {line}\n" for line in render(ruleset.setup_network_batch(NET)))


def test_backend_turns_a_refusal_into_a_firewall_error_with_context(monkeypatch, capfd):
    fake = FakeContext(-1, "internal:0:0-0: Error: Could not process rule: File exists\n\n")
    monkeypatch.setattr(libnft, "_ctx", fake)
    with pytest.raises(FirewallError) as info:
        nft_backend.NftablesBackend().setup_network(NET)
    msg = str(info.value)
    assert msg.startswith("nft setup for network minirt: Could not process rule: File exists (is bridge minirt0")
    assert "\n" not in msg
    assert info.value.batch_text == "\n".join(render(ruleset.setup_network_batch(NET)))
    assert capfd.readouterr().err == ""  # --explain is off

    fake.err = "internal:0:0-0: Error: Could not process rule: No such file or directory\n\n"
    with pytest.raises(FirewallError) as info:
        nft_backend.NftablesBackend().teardown_network(LAB)
    assert str(info.value) == "nft teardown for network lab: Could not process rule: No such file or directory"
    fake.err = ""
    with pytest.raises(FirewallError) as info:
        nft_backend.NftablesBackend().delete_table()
    assert str(info.value) == "nft delete table inet minirt: libnftables returned -1"


def test_a_bad_spec_never_reaches_libnftables(monkeypatch):
    fake = FakeContext()
    monkeypatch.setattr(libnft, "_ctx", fake)
    with pytest.raises(ConfigError):
        nft_backend.NftablesBackend().setup_network(NetworkSpec("q", 'br"0', "10.0.0.0/24", "10.0.0.1"))
    assert fake.sent == []


def test_get_backend():
    none = get_backend("none")
    assert isinstance(none, NoFirewall) and none.name == "none"
    none.setup_network(NET)  # touches nothing, needs nothing
    none.teardown_network(NET)
    none.delete_table()
    assert get_backend("nftables").name == "nftables"
    with pytest.raises(ConfigError, match="unknown firewall backend 'iptables' \\(known: nftables, none\\)"):
        get_backend("iptables")


def test_backends_are_imported_lazily():
    """Importing the package or choosing a backend loads no bindings; only a change does."""
    code = (
        "import sys; from minirt.net.firewall import get_backend, NetworkSpec; b = get_backend('nftables'); "
        "print('nftables' in sys.modules, 'json' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO).stdout
    assert out.split() == ["False", "False"]
