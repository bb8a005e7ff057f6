"""`network reload` after `nft flush ruleset`, and `doctor` naming a table that will drop our traffic."""

from tests.integration.test_lifecycle import ok
from tests.integration.test_nat_wan import WAN_HOST, ask, wan  # noqa: F401 - fixture


def test_reload_restores_masquerade_after_a_flush(minirt, wan):  # noqa: F811
    assert ask(minirt, "tcp")[0] == WAN_HOST
    minirt.host.run("nft", "flush", "ruleset")
    assert minirt.host.run("nft", "list", "table", "inet", "minirt", check=False).returncode != 0
    assert ok(minirt("network", "reload")) == "minirt\n"
    assert ask(minirt, "tcp")[0] == WAN_HOST  # masqueraded again


def test_doctor_names_a_foreign_forward_drop_policy(minirt):
    out = minirt("doctor")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "policy drop" not in out.stdout
    minirt.host.run("nft", "add", "table", "ip", "filter")
    minirt.host.run("nft", "add", "chain", "ip", "filter", "FORWARD",
                    "{ type filter hook forward priority 0; policy drop; }")  # fmt: skip
    out = minirt("doctor")
    assert "warn  table ip filter: chain FORWARD (hook forward) has policy drop" in out.stdout
    assert 'iifname "minirt0" accept' in out.stdout
