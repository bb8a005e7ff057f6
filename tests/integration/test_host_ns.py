"""The throwaway host of each test (tests/conftest.py HostNS) owns its state: whatever the real
host says (ip_forward=1 after `make run` or on a Docker host, br_netfilter loaded, another
resolv.conf), a test starts from the same sysctls, br_netfilter setting and resolv.conf."""

import pytest

from tests.conftest import BR_NETFILTER, HOST_SYSCTLS, RESOLV_CONF, HostNS


def _sysctls(h: HostNS, keys) -> dict[str, str]:
    out = h.run("sysctl", "-e", *keys).stdout  # -e: keys this kernel lacks are left out
    return dict(line.split(" = ", 1) for line in out.splitlines())


def test_sysctls_are_the_fixtures_not_the_real_hosts(host_ns):
    got = _sysctls(host_ns, HOST_SYSCTLS)
    assert got["net.ipv4.ip_forward"] == "0" and got["net.ipv6.conf.all.forwarding"] == "0"
    assert got == {k: v for k, v in HOST_SYSCTLS.items() if k in got}
    assert _sysctls(host_ns, BR_NETFILTER) == dict.fromkeys(BR_NETFILTER, "0")


@pytest.mark.br_netfilter
def test_br_netfilter_on_when_the_test_asks(host_ns):
    assert _sysctls(host_ns, BR_NETFILTER) == dict.fromkeys(BR_NETFILTER, "1")


def test_resolv_conf_is_the_fixture(host_ns):
    assert host_ns.run("cat", "/etc/resolv.conf").stdout == RESOLV_CONF
    host_ns.set_resolv_conf("nameserver ::1\n")
    assert host_ns.run("cat", "/etc/resolv.conf").stdout == "nameserver ::1\n"
    with open("/etc/resolv.conf") as f:  # the machine's own is untouched
        assert f.read() != "nameserver ::1\n"
