"""Name resolution on user-defined networks (net/dnsd.py): names, aliases, late starters,
isolation, no names on the default network, no forwarding in tests, and no leaked responder.

Network safety: every Runner sets MINIRT_DNS_UPSTREAM="" (conftest), so an unknown name is
answered REFUSED and nothing is forwarded; the one forwarding test points the responder at a
fake upstream on a TEST-NET address inside the test's own host namespace.
"""

import os
import subprocess
import sys

import pytest

from tests.helpers import kernel
from tests.integration.test_lifecycle import inspect, ok, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
WWW = "mkdir -p /www && echo hello-from-db > /www/index.html && exec httpd -f -p 80 -h /www"


def responders(minirt) -> set[str]:
    """minirt-dns processes serving this test's MINIRT_ROOT, found as the session leak guard
    finds minirt processes."""
    return {p for p in kernel.minirt_processes(set(), root=minirt.root) if "minirt-dns" in p}


def test_names_aliases_and_late_starters_resolve(minirt):
    ok(minirt("network", "create", "--subnet", "10.77.0.0/24", "backend"))
    # the asker starts first, and keeps resolving a name that does not exist yet
    ok(minirt("run", "-d", "--name", "asker", "--net", "backend", "--",
              "sh", "-c", "until ping -c1 -W1 late; do sleep 0.2; done; echo FOUND-LATE; exec sleep 1000"))  # fmt: skip
    ok(minirt("run", "-d", "--name", "db", "--net", "backend", "--network-alias", "database",
              "--network-alias", "DB-Alias", "--", "sh", "-c", WWW))  # fmt: skip
    db = inspect(minirt, "db")
    db_ip = db["NetworkSettings"]["IPAddress"]
    resolv = ok(minirt("exec", "asker", "cat", "/etc/resolv.conf"))
    assert resolv.splitlines()[0] == "nameserver 10.77.0.1" and "ndots:0" in resolv
    # the asker's resolv.conf predates db: answers come from live state
    for name in ("db", "database", "db.backend", "database.backend", "db-alias", "DB.BACKEND", db["Id"][:12]):
        out = ok(minirt("exec", "asker", "nslookup", name))
        assert f"Address: {db_ip}" in out, (name, out)
    assert "hello-from-db" in ok(minirt("exec", "asker", "wget", "-qO-", "http://database/"))
    ok(minirt("exec", "asker", "ping", "-c1", "-W2", "db"))
    # a container started after the asker, found by the asker's loop
    ok(minirt("run", "-d", "--name", "late", "--net", "backend", "--", "sleep", "1000"))
    try:
        wait_for(lambda: "FOUND-LATE" in minirt("logs", "asker").stdout, timeout=20, what="the late starter")
    except AssertionError:
        r = minirt("exec", "asker", "nslookup", "late")
        logs = minirt("logs", "asker")
        seen = f"late: {r.stdout}{r.stderr}\nasker logs: {logs.stdout[-800:]}{logs.stderr[-800:]}"
        raise AssertionError(seen) from None
    # unknown names: NXDOMAIN inside the network's zone, REFUSED (not forwarded) elsewhere
    r = minirt("exec", "asker", "nslookup", "nosuch.backend")
    assert r.returncode != 0 and "NXDOMAIN" in r.stdout + r.stderr
    r = minirt("exec", "asker", "nslookup", "nosuch.example")
    assert r.returncode != 0 and "REFUSED" in r.stdout + r.stderr
    # a stopped container's name goes away with it
    ok(minirt("rm", "-f", "late"))
    r = minirt("exec", "asker", "nslookup", "late")
    assert r.returncode != 0
    ok(minirt("rm", "-f", "asker", "db"))
    ok(minirt("network", "rm", "backend"))
    assert responders(minirt) == set()


@pytest.mark.parametrize(
    "host, expected",
    [
        ("nameserver 203.0.113.53\nsearch example.test\n",
         "nameserver 10.76.0.1\nsearch example.test\noptions ndots:0\n"),
        ("nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n",
         "nameserver 10.76.0.1\nsearch lan\noptions edns0 trust-ad ndots:0\n"),
        ("nameserver ::1\noptions ndots:2\n", "nameserver 10.76.0.1\noptions ndots:2\n"),  # the host's ndots wins
    ],
    ids=["lan", "stub-127.0.0.53", "ndots-kept"],
)  # fmt: skip
def test_resolv_conf_on_a_network_with_names(minirt, host, expected):
    """The responder on the gateway, the host's search lines and options, ndots:0 unless the
    host sets ndots; the host's file is a fixture (conftest HostNS), never the machine's."""
    minirt.host.set_resolv_conf(host)
    ok(minirt("network", "create", "--subnet", "10.76.0.0/24", "named"))
    assert ok(minirt("run", "--rm", "--net", "named", "--", "cat", "/etc/resolv.conf")) == expected
    ok(minirt("network", "rm", "named"))


def test_default_network_has_no_names_and_refuses_aliases(minirt):
    ok(minirt("run", "-d", "--name", "web", "--", "sleep", "1000"))
    r = minirt("run", "--rm", "--", "sh", "-c", "cat /etc/resolv.conf; ip route")
    gateway = next(line.split()[2] for line in r.stdout.splitlines() if line.startswith("default"))
    assert f"nameserver {gateway}" not in r.stdout
    assert responders(minirt) == set()
    assert not os.path.exists(f"{minirt.root}/networks/minirt/dns.pid")
    r = minirt("run", "--rm", "--network-alias", "x1", "--", "true")
    assert (r.returncode, r.stderr) == (
        125, "minirt: network-scoped alias is supported only for containers in user defined networks\n")  # fmt: skip
    r = minirt("run", "--rm", "--net", "none", "--network-alias", "x1", "--", "true")
    assert r.returncode == 125
    ok(minirt("network", "create", "n9"))
    r = minirt("run", "--rm", "--net", "n9", "--network-alias", "-bad", "--", "true")
    assert r.returncode == 125 and "invalid network alias" in r.stderr
    ok(minirt("rm", "-f", "web"))
    ok(minirt("network", "rm", "n9"))


def test_names_of_another_network_do_not_resolve(minirt):
    ok(minirt("network", "create", "--subnet", "10.81.0.0/24", "n1"))
    ok(minirt("network", "create", "--subnet", "10.82.0.0/24", "n2"))
    ok(minirt("run", "-d", "--name", "only1", "--net", "n1", "--", "sleep", "1000"))
    r = minirt("run", "--rm", "--net", "n2", "--", "nslookup", "only1")
    assert r.returncode != 0 and "10.81.0." not in r.stdout
    # asking n1's responder directly from n2 is refused (source outside n1's subnet)
    r = minirt("run", "--rm", "--net", "n2", "--", "nslookup", "only1", "10.81.0.1")
    assert r.returncode != 0 and "REFUSED" in r.stdout + r.stderr
    out = ok(minirt("run", "--rm", "--net", "n1", "--", "nslookup", "only1"))
    assert "Address: 10.81.0.2" in out
    ok(minirt("rm", "-f", "only1"))
    ok(minirt("network", "rm", "n1", "n2"))


def test_responder_lifecycle_idle_exit_and_network_rm(minirt):
    ok(minirt("network", "create", "--subnet", "10.83.0.0/24", "life"))
    pidfile = f"{minirt.root}/networks/life/dns.pid"
    ok(minirt("run", "-d", "--name", "c1", "--net", "life", "--", "sleep", "1000"))
    first = open(pidfile).read()
    assert len(responders(minirt)) == 1
    ok(minirt("run", "-d", "--name", "c2", "--net", "life", "--", "sleep", "1000"))
    assert open(pidfile).read() == first  # one responder per network
    ok(minirt("rm", "-f", "c1", "c2"))
    # no live lease: it exits by itself, removing its pid file
    wait_for(lambda: not responders(minirt) and not os.path.exists(pidfile), what="the idle responder's exit")
    # the next container starts a new one, and it answers
    out = ok(minirt("run", "--rm", "--name", "c3", "--net", "life", "--", "nslookup", "c3"))
    assert "Address: 10.83.0." in out
    # network rm right after the last container: the responder is killed, nothing remains
    ok(minirt("network", "rm", "life"))
    assert responders(minirt) == set()
    assert not os.path.exists(f"{minirt.root}/networks/life")
    r = minirt.host.run("ss", "-lnup", check=False)
    assert ":53 " not in r.stdout


def test_unknown_names_forwarded_to_a_fake_upstream(minirt):
    """The only test that forwards: to a fake upstream on 198.51.100.53 in the test's own
    host namespace (on its loopback), via the container's --dns and via MINIRT_DNS_UPSTREAM."""
    minirt.host.run("ip", "addr", "add", "198.51.100.53/32", "dev", "lo")  # the test netns's own lo
    repo = os.path.dirname(os.path.dirname(HERE))
    env = {**os.environ, "PYTHONPATH": f"{repo}"}
    argv = [*minirt.host.prefix(), sys.executable, f"{repo}/tests/helpers/fakedns.py", "198.51.100.53"]
    fake = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert fake.stdout.readline().strip() == "listening"
        ok(minirt("network", "create", "--subnet", "10.84.0.0/24", "fw"))
        # upstream empty (the tests' default), but the container's own --dns is the upstream
        out = ok(minirt("run", "--rm", "--net", "fw", "--dns", "198.51.100.53", "--",
                        "nslookup", "-type=a", "far.example"))  # fmt: skip
        assert "192.0.2.99" in out
        assert fake.stdout.readline().split()[:2] == ["asked", "far.example"]
        ok(minirt("network", "rm", "fw"))
        ok(minirt("network", "create", "--subnet", "10.84.0.0/24", "fw"))
        out = ok(minirt("run", "--rm", "--net", "fw", "--", "nslookup", "-type=a", "far2.example",
                        env={"MINIRT_DNS_UPSTREAM": "198.51.100.53"}))  # fmt: skip
        assert "192.0.2.99" in out
        ok(minirt("network", "rm", "fw"))
        # an internal network never forwards, not even to the container's --dns
        ok(minirt("network", "create", "--internal", "--subnet", "10.85.0.0/24", "lab"))
        r = minirt("run", "--rm", "--net", "lab", "--dns", "198.51.100.53", "--", "nslookup", "-type=a", "far3.example")
        assert r.returncode != 0 and "REFUSED" in r.stdout + r.stderr
        ok(minirt("network", "rm", "lab"))
    finally:
        fake.kill()
        fake.wait()


def test_default_network_names_when_the_config_says_so(minirt):
    minirt.write_config(default_dns=True)
    ok(minirt("run", "-d", "--name", "web", "--", "sleep", "1000"))
    out = ok(minirt("run", "--rm", "--", "sh", "-c", "head -1 /etc/resolv.conf; nslookup web"))
    gateway = inspect(minirt, "web")["NetworkSettings"]["Gateway"]
    assert out.startswith(f"nameserver {gateway}\n")
    assert "Address: " + inspect(minirt, "web")["NetworkSettings"]["IPAddress"] in out
    ok(minirt("rm", "-f", "web"))
    ok(minirt("network", "rm", "minirt"))
    assert responders(minirt) == set()
