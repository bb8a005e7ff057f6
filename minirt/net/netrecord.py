"""Bridge network records: what `minirt network create` (or the first container) wrote down.

Runs in: any minirt process, and the DNS responder. A leaf module (state and errors only): the
bridge driver, `connect`, the DNS responder, `gc` and the CLI all read these records, while
creating and removing a network's host side is net/network.py's.

    $MINIRT_ROOT/networks/<name>/network.json   bridge, subnet, gateway, mtu, firewall backend,
                                                 internal, icc, dns, subnet6/gateway6 (atomic JSON)
"""

import os

from minirt.errors import NoSuchObject
from minirt.state import read_json

DEFAULT_NETWORK = "minirt"
DEFAULT_BRIDGE = "minirt0"


class Network:
    __slots__ = ("name", "id", "bridge", "subnet", "prefixlen", "gateway", "mtu", "firewall", "internal", "icc", "dns",
                 "dir", "subnet6", "prefixlen6", "gateway6", "is_gateway", "masquerade", "record")  # fmt: skip

    def __init__(self, record: dict, directory: str):
        self.record = record  # as read (or, in a dry run, as it would be written)
        self.name = record["name"]
        # Docker's 64-hex network id (events' Actor.ID); a record written before ids existed
        # is known by its name
        self.id = record.get("id") or self.name
        self.bridge = record["bridge"]
        self.subnet = record["subnet"]
        self.prefixlen = int(self.subnet.rsplit("/", 1)[1])
        self.gateway = record["gateway"]
        self.mtu = record["mtu"]
        self.firewall = record["firewall"]
        self.internal = record.get("internal", False)
        self.icc = record.get("icc", True)
        self.dns = record.get("dns", self.name != DEFAULT_NETWORK)
        self.dir = directory
        # dual-stack (network create --ipv6): None on IPv4-only networks
        self.subnet6 = record.get("subnet6")
        self.prefixlen6 = int(self.subnet6.rsplit("/", 1)[1]) if self.subnet6 else None
        self.gateway6 = record.get("gateway6")
        # CNI networks (minirt/cni) may turn these off (isGateway, ipMasq); minirt's own are on
        self.is_gateway = record.get("is_gateway", True)  # the bridge holds the gateway address
        self.masquerade = record.get("masquerade", True)  # outbound traffic is masqueraded

    def spec(self):
        from minirt.net.firewall import NetworkSpec

        spec = NetworkSpec(self.name, self.bridge, self.subnet, self.gateway, self.internal, self.icc)
        spec.masquerade = self.masquerade
        if self.subnet6:
            spec.subnet6, spec.gateway6 = self.subnet6, self.gateway6
        return spec


def networks_dir(root: str) -> str:
    return f"{root}/networks"


def load(root: str, name: str) -> Network | None:
    d = f"{networks_dir(root)}/{name}"
    try:
        return Network(read_json(f"{d}/network.json"), d)
    except FileNotFoundError:
        return None


def list_networks(root: str) -> list[Network]:
    try:
        names = sorted(os.listdir(networks_dir(root)))
    except FileNotFoundError:
        return []
    return [n for n in (load(root, name) for name in names if name != "lock") if n is not None]


def load_existing(root: str, name: str) -> Network:
    net = load(root, name)
    if net is None:
        raise NoSuchObject(f"network {name!r}: no such network")
    return net
