"""minirt-cni's contract without root: environment, configuration, version negotiation, Results
per cniVersion and error Results (the executable's run() included, for calls that fail before
anything touches the host)."""

import json

import pytest

from minirt.cni import main, protocol, store
from minirt.cni.protocol import CniError

BASE = {"cniVersion": "1.0.0", "name": "net1", "type": "minirt-cni"}


def conf(command="ADD", **extra):
    return protocol.parse_config(json.dumps({**BASE, **extra}).encode(), command)


def code_of(fn, *args) -> int:
    with pytest.raises(CniError) as e:
        fn(*args)
    return e.value.code


# -- environment ---------------------------------------------------------------------------------

ENV = {"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/proc/1/ns/net", "CNI_IFNAME": "eth0"}


def test_env_of_each_verb():
    e = protocol.parse_env({**ENV, "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=web;", "CNI_PATH": "/opt/cni/bin"})
    assert (e.command, e.container_id, e.netns, e.ifname) == ("ADD", "c1", "/proc/1/ns/net", "eth0")
    assert e.args == {"IgnoreUnknown": "1", "K8S_POD_NAME": "web"}
    # DEL needs no netns (SPEC.md: it must work without one); STATUS and GC need no attachment
    assert protocol.parse_env({"CNI_COMMAND": "DEL", "CNI_CONTAINERID": "c1", "CNI_IFNAME": "eth0"}).netns == ""
    assert protocol.parse_env({"CNI_COMMAND": "GC"}).command == "GC"
    assert protocol.parse_env({"CNI_COMMAND": "STATUS"}).command == "STATUS"


@pytest.mark.parametrize("env, words", [
    ({}, "CNI_COMMAND"),
    ({"CNI_COMMAND": "ATTACH"}, "unknown CNI_COMMAND"),
    ({**ENV, "CNI_NETNS": ""}, "CNI_NETNS"),
    ({"CNI_COMMAND": "CHECK", "CNI_IFNAME": "eth0"}, "CNI_CONTAINERID,CNI_NETNS"),
    ({**ENV, "CNI_CONTAINERID": "-c1"}, "CNI_CONTAINERID"),
    ({**ENV, "CNI_CONTAINERID": "c/1"}, "CNI_CONTAINERID"),
    ({**ENV, "CNI_IFNAME": "a" * 16}, "CNI_IFNAME"),
    ({**ENV, "CNI_IFNAME": ".."}, "CNI_IFNAME"),
    ({**ENV, "CNI_IFNAME": "eth:0"}, "CNI_IFNAME"),
    ({**ENV, "CNI_IFNAME": "eth 0"}, "CNI_IFNAME"),
    ({**ENV, "CNI_ARGS": "FOO"}, "CNI_ARGS"),
])  # fmt: skip
def test_bad_environment_is_code_4_naming_the_variable(env, words):
    with pytest.raises(CniError) as e:
        protocol.parse_env(env)
    assert e.value.code == 4 and words in e.value.msg


# -- configuration -------------------------------------------------------------------------------


def test_defaults_are_minirt_run_s():
    c = conf()
    assert (c.name, c.version, c.bridge, c.subnet, c.gateway, c.mtu) == ("net1", "1.0.0", None, None, None, None)
    assert c.is_gateway and c.is_default_gateway and c.ip_masq and not c.hairpin
    assert c.port_mappings == [] and c.prev_result is None and c.dns == {}


def test_gateway_options_as_the_reference_bridge_plugin():
    assert not conf(isGateway=False).is_gateway and not conf(isGateway=False).is_default_gateway
    c = conf(isGateway=False, isDefaultGateway=True)  # isDefaultGateway implies isGateway
    assert c.is_gateway and c.is_default_gateway
    c = conf(isDefaultGateway=False)  # a second network: a gateway, no default route
    assert c.is_gateway and not c.is_default_gateway
    assert not conf(ipMasq=False).ip_masq


def test_addresses_are_normalised_and_checked():
    c = conf(subnet="10.88.0.0/24", gateway="10.88.0.254", mtu=1400, bridge="cni0")
    assert (c.subnet, c.gateway, c.mtu, c.bridge) == ("10.88.0.0/24", "10.88.0.254", 1400, "cni0")
    for extra in ({"subnet": "10.88.0.1/24"}, {"subnet": "fd00::/64"}, {"subnet": "10.88.0.0/31"},
                  {"subnet": "10.88.0.0/24", "gateway": "10.89.0.1"}, {"gateway": "10.88.0.1"},
                  {"mtu": 10}, {"mtu": True}, {"mtu": "1400"}, {"ipMasq": "yes"}, {"bridge": "x" * 16},
                  {"dataDir": "relative"}, {"dns": []}):  # fmt: skip
        assert code_of(lambda: conf(**extra)) == 7, extra


@pytest.mark.parametrize("key, value", [("ipam", {"type": "host-local"}), ("vlan", 10), ("promiscMode", True),
                                        ("macspoofchk", True)])  # fmt: skip
def test_reference_plugin_keys_we_do_not_do_are_code_2(key, value):
    with pytest.raises(CniError) as e:
        conf(**{key: value})
    assert e.value.code == 2 and key in e.value.msg and json.dumps(value).split()[0].strip("{") in e.value.msg
    conf(**{key: False} if key != "ipam" and key != "vlan" else {})  # their "off" value passes


@pytest.mark.parametrize("name", ["", "-x", "a/b", "a b", "x" * 65])
def test_network_names(name):
    assert code_of(lambda: conf(name=name)) == 7


def test_versions():
    for v in protocol.SUPPORTED:
        assert conf(cniVersion=v).version == v
    assert code_of(lambda: conf(cniVersion="0.2.0")) == 1
    assert code_of(lambda: conf(cniVersion="2.0.0")) == 1
    assert code_of(lambda: conf(cniVersion="1.0")) == 6  # not a version at all
    assert code_of(lambda: protocol.parse_config(b'{"name": "n"}', "ADD")) == 1  # no cniVersion: 0.1.0 (libcni)
    # a verb newer than the configuration's version
    assert code_of(lambda: conf("CHECK", cniVersion="0.3.1")) == 1
    assert code_of(lambda: conf("STATUS", cniVersion="1.0.0")) == 1
    assert code_of(lambda: conf("GC", cniVersion="1.0.0", **{"cni.dev/valid-attachments": []})) == 1
    assert conf("STATUS", cniVersion="1.1.0").version == "1.1.0"


def test_decoding_failures_are_code_6():
    for data in (b"{", b"\xff\xfe", b"[1, 2]", b""):
        assert code_of(protocol.parse_config, data, "ADD") == 6


def test_port_mappings():
    c = conf(runtimeConfig={"portMappings": [
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
        {"hostPort": 5353, "containerPort": 53, "protocol": "UDP", "hostIP": "127.0.0.1"},
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},  # a duplicate (podman sends v4 and v6 twins)
        {"hostPort": 8443, "containerPort": 443, "hostIP": "::1"}]})  # fmt: skip
    assert [(m.host_ip, m.host_port, m.container_port, m.proto) for m in c.port_mappings] == [
        ("0.0.0.0", 8080, 80, "tcp"), ("127.0.0.1", 5353, 53, "udp")]
    assert c.skipped_mappings == [{"hostPort": 8443, "containerPort": 443, "hostIP": "::1"}]
    from minirt.net.firewall import ports as fwports

    assert fwports.elements(c.port_mappings, "10.88.0.2") == [
        ("ports_any", "tcp . 8080", "10.88.0.2 . 80"), ("ports_ip", "127.0.0.1 . udp . 5353", "10.88.0.2 . 53")]
    for bad in ([{"hostPort": 0, "containerPort": 80}], [{"hostPort": 80}], [{"hostPort": 1, "containerPort": 1,
                "protocol": "sctp"}], [{"hostPort": 1, "containerPort": 1, "hostIP": "nope"}], "x",
                [{"hostPort": 8080, "containerPort": 80}, {"hostPort": 8080, "containerPort": 81}]):  # fmt: skip
        assert code_of(lambda: conf(runtimeConfig={"portMappings": bad})) == 7, bad


def test_a_conflist_on_stdin_uses_its_minirt_cni_entry():
    c = protocol.parse_config(json.dumps({"cniVersion": "1.0.0", "name": "podnet", "plugins": [
        {"type": "minirt-cni", "subnet": "10.88.0.0/24"}, {"type": "tuning"}]}).encode(), "ADD")  # fmt: skip
    assert (c.name, c.version, c.subnet) == ("podnet", "1.0.0", "10.88.0.0/24")
    bad = json.dumps({"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "bridge"}]}).encode()
    assert code_of(protocol.parse_config, bad, "ADD") == 7


def test_gc_needs_the_valid_attachments():
    c = conf("GC", cniVersion="1.1.0", **{"cni.dev/valid-attachments": [{"containerID": "a", "ifname": "eth0"}]})
    assert c.valid_attachments == [("a", "eth0")]
    assert code_of(lambda: conf("GC", cniVersion="1.1.0")) == 7
    assert code_of(lambda: conf("GC", cniVersion="1.1.0", **{"cni.dev/valid-attachments": [{"id": "a"}]})) == 7


# -- Results -------------------------------------------------------------------------------------

RESULT = {
    "interfaces": [{"name": "br-1", "mac": "aa:00:00:00:00:01", "mtu": 1400},
                   {"name": "mc1", "mac": "aa:00:00:00:00:02", "mtu": 1400},
                   {"name": "eth0", "mac": "02:42:0a:58:00:02", "mtu": 1400, "sandbox": "/run/netns/x"}],
    "ips": [{"address": "10.88.0.2/24", "gateway": "10.88.0.1", "interface": 2}],
    "routes": [{"dst": "0.0.0.0/0", "gw": "10.88.0.1"}],
    "dns": {},
}  # fmt: skip


def test_result_040_carries_ip_versions_and_no_mtu():
    r = protocol.render_result("0.4.0", RESULT)
    assert r["cniVersion"] == "0.4.0"
    assert r["ips"] == [{"version": "4", "interface": 2, "address": "10.88.0.2/24", "gateway": "10.88.0.1"}]
    assert r["interfaces"][2] == {"name": "eth0", "mac": "02:42:0a:58:00:02", "sandbox": "/run/netns/x"}
    assert "sandbox" not in r["interfaces"][0] and r["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.88.0.1"}]


def test_result_100_drops_the_ip_version_and_110_adds_mtu():
    r = protocol.render_result("1.0.0", RESULT)
    assert r["ips"] == [{"interface": 2, "address": "10.88.0.2/24", "gateway": "10.88.0.1"}]
    assert "mtu" not in r["interfaces"][0]
    r = protocol.render_result("1.1.0", RESULT)
    assert r["interfaces"][2] == {"name": "eth0", "mac": "02:42:0a:58:00:02", "mtu": 1400, "sandbox": "/run/netns/x"}


def test_result_without_gateway_or_routes():
    r = protocol.render_result("1.0.0", {**RESULT, "ips": [{"address": "10.88.0.2/24", "gateway": None,
                                                             "interface": 2}], "routes": []})  # fmt: skip
    assert r["ips"] == [{"interface": 2, "address": "10.88.0.2/24"}] and "routes" not in r


def test_prev_result_of_either_shape_reads_the_same():
    old = protocol.render_result("0.4.0", RESULT)
    new = protocol.render_result("1.0.0", RESULT)
    assert protocol.normalize_result(old)["ips"] == protocol.normalize_result(new)["ips"]
    assert protocol.sandbox_addresses(protocol.normalize_result(old), "eth0") == [("10.88.0.2", 24, "10.88.0.1")]
    assert protocol.sandbox_addresses(protocol.normalize_result(old), "eth1") == []


def test_add_with_a_prev_result_appends_and_shifts_interface_indexes():
    prev = protocol.normalize_result({"interfaces": [{"name": "lo0"}], "ips": [], "dns": {"nameservers": ["1.1.1.1"]}})
    mine = protocol.normalize_result(RESULT)
    merged = protocol.merge_results(prev, mine)
    assert [i["name"] for i in merged["interfaces"]] == ["lo0", "br-1", "mc1", "eth0"]
    assert merged["ips"][0]["interface"] == 3 and merged["dns"] == {"nameservers": ["1.1.1.1"]}


# -- errors and VERSION through the executable's run() -------------------------------------------


def test_error_result_and_exit_status():
    code, out, err = main.run({"CNI_COMMAND": "ADD", **ENV}, b"{oops")
    assert code == 1 and err.startswith("minirt-cni: ")
    body = json.loads(out)
    assert set(body) == {"cniVersion", "code", "msg"} and body["code"] == 6 and body["cniVersion"] == "1.1.0"
    code, out, _err = main.run(ENV, json.dumps({**BASE, "cniVersion": "0.4.0", "ipam": {}}).encode())
    body = json.loads(out)
    assert code == 1 and body["code"] == 2 and body["cniVersion"] == "0.4.0"  # the configuration's version
    code, out, _err = main.run({"CNI_COMMAND": "ADD"}, b"{}")
    assert json.loads(out)["code"] == 4 and "CNI_CONTAINERID" in json.loads(out)["msg"]


def test_version_echoes_the_input_version():
    code, out, _err = main.run({"CNI_COMMAND": "VERSION"}, b'{"cniVersion": "1.0.0"}')
    assert code == 0 and json.loads(out) == {"cniVersion": "1.0.0", "supportedVersions": list(protocol.SUPPORTED)}
    code, out, _err = main.run({"CNI_COMMAND": "VERSION"}, b"")
    assert json.loads(out)["cniVersion"] == "1.1.0"


# -- attachment records (tmp_path) ---------------------------------------------------------------


def test_records_are_claimed_once_and_keyed_by_container_and_ifname(tmp_path):
    d = str(tmp_path)
    rec = {"containerID": "a_b", "ifname": "c", "elements": [["ports_any", "tcp . 80", "10.0.0.2 . 80"]]}
    assert store.claim(d, rec) and not store.claim(d, rec)
    assert store.claim(d, {"containerID": "a", "ifname": "b_c"})  # no clash with ("a_b", "c")
    assert store.load(d, "a_b", "c")["host_ifname"] == store.host_ifname("a_b", "c")
    assert len(store.records(d)) == 2 and store.claimed_elements(d) == {("ports_any", "tcp . 80"): "10.0.0.2 . 80"}
    store.remove(d, "a_b", "c")
    store.remove(d, "a_b", "c")
    assert [r["containerID"] for r in store.records(d)] == ["a"]


def test_host_veth_names():
    name = store.host_ifname("3f2a", "eth0")
    assert name == store.host_ifname("3f2a", "eth0") != store.host_ifname("3f2a", "eth1")
    assert len(name) == 14 and name.startswith("mc") and store.is_host_ifname(name)
    assert not store.is_host_ifname("mr0123456789ab")


def test_ip_masq_false_leaves_only_the_masquerade_out():
    """CNI's ipMasq: false is a network that is not internal (forwarding, hairpin for published
    ports) but has no `ip saddr <subnet> masquerade` rule."""
    from minirt.net.firewall import NetworkSpec, ruleset

    spec = NetworkSpec("n1", "br-n1", "10.88.0.0/24", "10.88.0.1")
    with_masq = json.dumps(ruleset.setup_network_batch(spec))
    spec.masquerade = False
    without = ruleset.setup_network_batch(spec)
    nat = [c for c in without if "rule" in c.get("add", {}) and c["add"]["rule"]["chain"] == "net-n1-nat"]
    assert nat == [] and '"masquerade"' in with_masq
    assert any(c.get("add", {}).get("rule", {}).get("chain") == "net-n1-nat" for c in json.loads(with_masq))
    assert any(c.get("add", {}).get("rule", {}).get("chain") == "net-n1-hairpin" for c in without)
