"""`network reload` after `nft flush ruleset`; `doctor`: the cgroup mode, a table that drops our traffic."""

from tests.helpers import cgroups
from tests.integration.test_lifecycle import ok, wait_for
from tests.integration.test_ports import HTTP, fetch
from tests.integration.test_nat_wan import WAN_HOST, ask, wan  # noqa: F401 - fixture


def test_reload_restores_masquerade_and_published_ports_after_a_flush(minirt, wan):  # noqa: F811
    ok(minirt("run", "-d", "--name", "web", "-p", "8080:80", "-p", "127.0.0.1:9090:80", "--", *HTTP.split()))
    wait_for(lambda: fetch(wan, WAN_HOST, 8080) == "ok", what="httpd")
    assert ask(minirt, "tcp")[0] == WAN_HOST
    minirt.host.run("nft", "flush", "ruleset")
    assert minirt.host.run("nft", "list", "table", "inet", "minirt", check=False).returncode != 0
    assert fetch(wan, WAN_HOST, 8080).startswith("failed")
    assert ok(minirt("network", "reload")) == "minirt\n"
    assert ask(minirt, "tcp")[0] == WAN_HOST  # masqueraded again
    assert fetch(wan, WAN_HOST, 8080) == "ok"  # published again, from the container's record
    assert fetch(minirt.host, "127.0.0.1", 9090) == "ok"
    assert fetch(wan, WAN_HOST, 9090).startswith("failed")  # still bound to 127.0.0.1 only
    ok(minirt("network", "reload"))  # again: nothing changes, nothing fails
    assert fetch(wan, WAN_HOST, 8080) == "ok"
    ok(minirt("rm", "-f", "web"))


def test_doctor_names_a_foreign_forward_drop_policy(minirt):
    out = minirt("doctor")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "policy drop" not in out.stdout
    points = cgroups.hierarchies()  # the kernel's mounts, not minirt's reading of them
    mode = "unified" if "" in points else "hybrid" if "unified" in points else "legacy"
    assert f"ok    cgroups: {mode} (" in out.stdout, out.stdout
    minirt.host.run("nft", "add", "table", "ip", "filter")
    minirt.host.run("nft", "add", "chain", "ip", "filter", "FORWARD",
                    "{ type filter hook forward priority 0; policy drop; }")  # fmt: skip
    out = minirt("doctor")
    assert "warn  table ip filter: chain FORWARD (hook forward) has policy drop" in out.stdout
    assert 'iifname "minirt0" accept' in out.stdout
