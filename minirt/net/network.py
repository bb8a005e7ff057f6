"""Bridge networks: their records, and creating or removing the host side of one.

Runs in: the minirt parent, host network namespace.

    $MINIRT_ROOT/networks/
      lock                         flock: creating and removing networks
      <name>/network.json          bridge, subnet, gateway, mtu, firewall backend (atomic JSON)
      <name>/lock                  flock: IPAM for this network (net/ipam.py)
      <name>/leases/<ip>           one lease per address (net/ipam.py)
      <name>/dns.pid, dns.log      the network's DNS responder, when it runs (net/dnsd.py)

A network is the bridge with the gateway address, ip_forward, and the network's chains in
minirt's nft table (net/firewall). It is created on first use and stays until `minirt network
rm`, like Docker's default bridge. The record names the firewall backend it was set up with,
so removal uses the same one (netavark's firewall-driver file). If the bridge has vanished
from the kernel while the record remains (someone deleted it), the next container re-creates
it: every step is idempotent.

The default network's subnet is picked from Docker's default pools, skipping any that overlap
a host route or another network (Docker does the same), unless pinned in the config file
($MINIRT_CONFIG, default /etc/minirt/config.json: {"default_subnet": "10.88.0.0/24"}).

Name resolution (net/dnsd.py) is on for user-defined networks and off for the default network,
as in Docker, unless the config file says {"default_dns": true} when the default network's
record is first written; the record's "dns" key is what counts afterwards.
"""

import fcntl
import os
import time

from minirt import explain
from minirt.errors import ConfigError, ConflictError, NoSuchObject
from minirt.state import atomic_write_json, read_json, rmtree

DEFAULT_NETWORK = "minirt"
DEFAULT_BRIDGE = "minirt0"
DEFAULT_CONFIG = "/etc/minirt/config.json"


class Network:
    __slots__ = ("name", "bridge", "subnet", "prefixlen", "gateway", "mtu", "firewall", "internal", "dns", "dir")

    def __init__(self, record: dict, directory: str):
        self.name = record["name"]
        self.bridge = record["bridge"]
        self.subnet = record["subnet"]
        self.prefixlen = int(self.subnet.rsplit("/", 1)[1])
        self.gateway = record["gateway"]
        self.mtu = record["mtu"]
        self.firewall = record["firewall"]
        self.internal = record.get("internal", False)
        self.dns = record.get("dns", self.name != DEFAULT_NETWORK)
        self.dir = directory

    def spec(self):
        from minirt.net.firewall import NetworkSpec

        return NetworkSpec(self.name, self.bridge, self.subnet, self.gateway, self.internal)


def networks_dir(root: str) -> str:
    return f"{root}/networks"


def _lock(root: str) -> int:
    d = networks_dir(root)
    os.makedirs(d, mode=0o700, exist_ok=True)
    fd = os.open(f"{d}/lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


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


def pinned_subnet() -> str | None:
    return _config().get("default_subnet")


def _config() -> dict:
    path = os.environ.get("MINIRT_CONFIG") or DEFAULT_CONFIG
    try:
        return read_json(path)
    except FileNotFoundError:
        return {}
    except ValueError as e:
        raise ConfigError(f"config {path}: not valid JSON ({e})") from None


def ensure(root: str, name: str, host) -> tuple[Network, int]:
    """The network and its bridge's ifindex, creating or repairing the host side as needed.

    Fast path (the usual case): the record exists and the bridge is there, one netlink lookup.
    """
    net = load(root, name)
    if net is not None:
        index = host.link_index(net.bridge)
        if index is not None:
            return net, index
    if net is None and name != DEFAULT_NETWORK:
        raise NoSuchObject(f"network {name!r}: no such network (create it with `minirt network create {name}`)")
    fd = _lock(root)
    try:
        net = load(root, name)
        if net is None:
            net = _record(root, DEFAULT_NETWORK, DEFAULT_BRIDGE, pinned_subnet(), None, False, host)
        return net, _setup_host_side(net, host)
    finally:
        os.close(fd)


def load_existing(root: str, name: str) -> Network:
    net = load(root, name)
    if net is None:
        raise NoSuchObject(f"network {name!r}: no such network")
    return net


def ensure_host_side(root: str, name: str, host) -> int:
    """Re-apply bridge, address, ip_forward and firewall for an existing network (reload)."""
    fd = _lock(root)
    try:
        return _setup_host_side(load_existing(root, name), host)
    finally:
        os.close(fd)


RESERVED_NAMES = ("none", "host", "bridge", "default", "container")


def create(root: str, name: str, host, subnet: str | None, gateway: str | None, internal: bool) -> Network:
    """`minirt network create`: a user-defined bridge network with its own bridge, subnet,
    gateway and IPAM. Its bridge is named like Docker's (`br-` + 12 hex of a hash of the name).
    Traffic between networks is dropped by each network's inbound chain; an internal network
    gets no masquerade, drops what leaves its bridge, and its containers no default route."""
    import hashlib

    from minirt import ids

    ids.check_name(name)
    if name in RESERVED_NAMES or name == DEFAULT_NETWORK:
        raise ConfigError(f"network {name!r}: the name is reserved")
    fd = _lock(root)
    try:
        if load(root, name) is not None:
            raise ConflictError(f"network {name!r}: already exists")
        bridge = "br-" + hashlib.sha256(name.encode()).hexdigest()[:12]
        net = _record(root, name, bridge, subnet, gateway, internal, host)
        try:
            _setup_host_side(net, host)
        except BaseException:
            _remove_locked(net, host)
            raise
        return net
    finally:
        os.close(fd)


def _record(root: str, name: str, bridge: str, subnet: str | None, gateway: str | None, internal: bool,
            host) -> Network:  # fmt: skip
    """Choose the subnet (given, or the first pool entry overlapping no route or network) and
    write the network's record. Called under the networks lock."""
    from minirt.net import subnets

    others = list_networks(root)
    if subnet:
        net_addr, plen = subnets.parse_subnet(subnet)
        subnet = f"{net_addr}/{plen}"
        clash = [n.name for n in others if not _disjoint(n.subnet, subnet)]
        if clash:
            raise ConflictError(f"subnet {subnet}: overlaps network {clash[0]!r}")
    else:
        taken = [f"{dst}/{plen}" for dst, plen, _oif in host.routes() if plen > 0]
        subnet = subnets.pick_subnet(subnets.DEFAULT_POOL, taken + [n.subnet for n in others])
    if gateway is None:
        gateway = subnets.gateway_of(subnet)
    elif not subnets.contains(subnet, gateway):
        raise ConfigError(f"gateway {gateway}: not inside subnet {subnet}")
    record = {
        "name": name,
        "driver": "bridge",
        "bridge": bridge,
        "subnet": subnet,
        "gateway": gateway,
        "mtu": host.uplink_mtu(),
        "firewall": "nftables",
        "internal": internal,
        "dns": _config().get("default_dns") is True if name == DEFAULT_NETWORK else True,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    d = f"{networks_dir(root)}/{name}"
    os.makedirs(f"{d}/leases", mode=0o700, exist_ok=True)
    atomic_write_json(f"{d}/network.json", record)
    return Network(record, d)


def _disjoint(a: str, b: str) -> bool:
    import ipaddress

    return not ipaddress.ip_network(a).overlaps(ipaddress.ip_network(b))


def _setup_host_side(net: Network, host) -> int:
    """Bridge up with the gateway address, ip_forward on, the network's nft chains: all
    idempotent, so this also repairs a half-made or damaged network."""
    from minirt.net import sysctl
    from minirt.net.firewall import get_backend

    index = host.ensure_bridge(net.bridge, net.mtu)
    host.add_address(index, net.bridge, net.gateway, net.prefixlen)
    sysctl.ensure("net.ipv4.ip_forward", "1")
    # published ports reached from the host's 127.0.0.1 are DNATed out of the bridge with a
    # loopback source (then masqueraded): the kernel drops those unless route_localnet is on
    # for the bridge (what Docker does when its userland proxy is off)
    sysctl.ensure(f"net.ipv4.conf.{net.bridge}.route_localnet", "1")
    get_backend(net.firewall).setup_network(net.spec())
    return index


def remove(root: str, name: str, host) -> None:
    """Tear the network down (chains, bridge, record); refused while containers use it."""
    from minirt import procfs
    from minirt.net import ipam

    fd = _lock(root)
    try:
        net = load_existing(root, name)
        users = [
            owner["container"][:12]
            for owner in ipam.LeaseStore(f"{net.dir}/leases").leases().values()
            if procfs.is_alive(owner.get("pid", 0), owner.get("start_time"))
        ]
        if users:
            raise ConflictError(f"network {name!r}: in use by container(s) {', '.join(users)}")
        _remove_locked(net, host)
    finally:
        os.close(fd)


def _remove_locked(net: Network, host) -> None:
    from minirt.net import dnsd
    from minirt.net.firewall import get_backend

    dnsd.stop(net.dir)
    get_backend(net.firewall).teardown_network(net.spec())
    explain.cmd(f"ip link del {net.bridge}")
    host.delete_link(net.bridge)
    rmtree(net.dir)
