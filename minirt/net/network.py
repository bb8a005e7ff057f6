"""Bridge networks: creating, repairing or removing the host side of one (the records
themselves are read through net/netrecord.py, a leaf module).

Runs in: the minirt parent, host network namespace.

    $MINIRT_ROOT/networks/
      lock                         flock: creating and removing networks
      <name>/network.json          bridge, subnet, gateway, mtu, firewall backend, internal, icc,
                                   dns, subnet6/gateway6 (atomic JSON; net/netrecord.py)
      <name>/lock                  flock: IPAM for this network (net/ipam.py)
      <name>/leases/<ip>           one lease per address (net/ipam.py)
      <name>/leases6/<ip6>         the same for IPv6, dual-stack networks only (--ipv6)
      <name>/dns.pid, dns.log      the network's DNS responder, when it runs (net/dnsd.py)

A network is the bridge with the gateway address, ip_forward, route_localnet on the bridge
(for published ports reached from the host's 127.0.0.1), bridge-nf-call-iptables when icc is
off, IPv6 forwarding on a dual-stack network, and the network's chains in minirt's nft table
(net/firewall). It is created on first use and stays until `minirt network
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
from minirt.net.netrecord import (  # noqa: F401 - the records' names, re-exported for the network's callers
    DEFAULT_BRIDGE,
    DEFAULT_NETWORK,
    Network,
    list_networks,
    load,
    load_existing,
    networks_dir,
)
from minirt.state import atomic_write_json, read_json, rmtree



def _lock(root: str) -> int:
    """flock on networks/lock; a dry run creates neither the file nor its directory (it takes
    the lock only if the file is there: it only reads)."""
    d = networks_dir(root)
    if explain.dry:
        try:
            fd = os.open(f"{d}/lock", os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return os.open("/", os.O_RDONLY | os.O_CLOEXEC)  # something to close
    else:
        os.makedirs(d, mode=0o700, exist_ok=True)
        fd = os.open(f"{d}/lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def pinned_subnet() -> str | None:
    return _config().get("default_subnet")


def _config() -> dict:
    from minirt.config import host_config

    return host_config()


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
            index = _setup_host_side(net, host)
            from minirt import events

            events.network(root, "create", net)  # the default network, made on first use
            return net, index
        return net, _setup_host_side(net, host)
    finally:
        os.close(fd)


def ensure_declared(root: str, name: str, host, *, bridge: str | None, subnet: str | None, gateway: str | None,
                    mtu: int | None, is_gateway: bool, masquerade: bool) -> tuple[Network, int]:  # fmt: skip
    """A network declared by its caller's configuration instead of `network create`: a CNI
    network (minirt/cni), whose configuration comes with every call. The record is written on
    first use with these settings (None: minirt's choice, as for a new network: `br-` + hash
    bridge, a free pool subnet, its first address, the uplink's MTU) and the host side set up.
    Later calls must agree with the record on every setting they give; while nothing is
    attached (no lease, no CNI attachment) a record that disagrees is torn down and made again,
    otherwise it is a ConfigError (SPEC.md: "The network configuration should not change
    between attachments"). Fast path as ensure(): record and bridge there, one lookup."""
    want = {"bridge": bridge, "subnet": subnet, "gateway": gateway, "mtu": mtu, "is_gateway": is_gateway,
            "masquerade": masquerade}  # fmt: skip
    net = load(root, name)
    if net is not None and not _disagreement(net, want):
        from minirt.net.netlink import index_of

        index = index_of(net.bridge)  # if_nametoindex: no netlink message class is imported
        if index is not None:
            return net, index
    fd = _lock(root)
    try:
        net = load(root, name)
        if net is not None and _disagreement(net, want):
            if _attached(net):
                raise ConfigError(f"network {name}: the configuration says {_disagreement(net, want)}, but "
                                  "containers are attached with the old settings (detach them first)")  # fmt: skip
            _remove_locked(net, host)
            net = None
        if net is None:
            net = _record(root, name, bridge or bridge_name(name), subnet, gateway, False, host)
            record = read_json(f"{net.dir}/network.json")
            record.update(dns=False, is_gateway=is_gateway, masquerade=masquerade, declared_by="cni")
            if mtu is not None:
                record["mtu"] = mtu
            atomic_write_json(f"{net.dir}/network.json", record)
            net = Network(record, net.dir)
            try:
                return net, _setup_host_side(net, host)
            except BaseException:
                _remove_locked(net, host)  # nothing is attached yet: leave no half-made network
                raise
        return net, _setup_host_side(net, host)
    finally:
        os.close(fd)


def bridge_name(name: str) -> str:
    """A network's default bridge: minirt0 for the default network, else Docker's way, `br-` +
    12 hex of a hash of the name."""
    import hashlib

    return DEFAULT_BRIDGE if name == DEFAULT_NETWORK else "br-" + hashlib.sha256(name.encode()).hexdigest()[:12]


def _disagreement(net: Network, want: dict) -> str:
    """The first setting of `want` the record does not have ("" when they agree)."""
    for key, value in want.items():
        if value is not None and getattr(net, key) != value:
            return f"{key} {value} (the network has {getattr(net, key)})"
    return ""


def _attached(net: Network) -> bool:
    """Any lease or CNI attachment record in the network."""
    for sub in ("leases", "leases6", "cni"):
        try:
            if any(n[:1].isdigit() or ":" in n for n in os.listdir(f"{net.dir}/{sub}") if not n.startswith(".")):
                return True
        except FileNotFoundError:
            pass
    return False


def ensure_host_side(root: str, name: str, host) -> int:
    """Re-apply bridge, address, ip_forward and firewall for an existing network (reload)."""
    fd = _lock(root)
    try:
        return _setup_host_side(load_existing(root, name), host)
    finally:
        os.close(fd)


RESERVED_NAMES = ("none", "host", "bridge", "default", "container")


def create(root: str, name: str, host, subnet: str | None, gateway: str | None, internal: bool,
           icc: bool = True, ipv6: bool = False, subnet6: str | None = None,
           gateway6: str | None = None) -> Network:  # fmt: skip
    """`minirt network create`: a user-defined bridge network with its own bridge, subnet,
    gateway and IPAM. Its bridge is named like Docker's (`br-` + 12 hex of a hash of the name).
    Traffic between networks is dropped by each network's inbound chain; an internal network
    gets no masquerade, drops what leaves its bridge, and its containers no default route.
    With icc=False (Docker's com.docker.network.bridge.enable_icc=false) containers of the
    network cannot reach each other, only the gateway and the outside.
    ipv6 (or a subnet6): dual-stack, see _record_ipv6."""
    from minirt import ids

    ids.check_name(name)
    if name in RESERVED_NAMES or name == DEFAULT_NETWORK:
        raise ConfigError(f"network {name!r}: the name is reserved")
    fd = _lock(root)
    try:
        if load(root, name) is not None:
            raise ConflictError(f"network {name!r}: already exists")
        net = _record(root, name, bridge_name(name), subnet, gateway, internal, host, icc)
        if ipv6 or subnet6:
            try:
                net = _record_ipv6(root, net, subnet6, gateway6)
            except BaseException:
                rmtree(net.dir)  # nothing of the host side exists yet
                raise
        try:
            _setup_host_side(net, host)
        except BaseException:
            if not explain.dry:  # a dry run made nothing to remove
                _remove_locked(net, host)
            raise
        from minirt import events

        events.network(root, "create", net)
        return net
    finally:
        os.close(fd)


def _record(root: str, name: str, bridge: str, subnet: str | None, gateway: str | None, internal: bool,
            host, icc: bool = True) -> Network:  # fmt: skip
    """Choose the subnet (given, or the first pool entry overlapping no route or network) and
    write the network's record. Called under the networks lock."""
    from minirt.net import subnets

    others = list_networks(root)

    def pick() -> str:
        taken = [f"{dst}/{plen}" for dst, plen, _oif in host.routes() if plen > 0]
        return subnets.pick_subnet(subnets.DEFAULT_POOL, taken + [n.subnet for n in others])

    subnet, gateway = _subnet_and_gateway(subnet, gateway, subnets.parse_subnet,
                                          {n.name: n.subnet for n in others}, pick)  # fmt: skip
    record = {
        "name": name,
        "id": os.urandom(32).hex(),  # Docker's network ID shape (events, inspect)
        "driver": "bridge",
        "bridge": bridge,
        "subnet": subnet,
        "gateway": gateway,
        "mtu": host.uplink_mtu(),
        "firewall": "nftables",
        "internal": internal,
        "icc": icc,
        "dns": _config().get("default_dns") is True if name == DEFAULT_NETWORK else True,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    d = f"{networks_dir(root)}/{name}"
    if not explain.dry:  # a dry run's network exists in memory only
        os.makedirs(f"{d}/leases", mode=0o700, exist_ok=True)
    atomic_write_json(f"{d}/network.json", record)
    return Network(record, d)


def _record_ipv6(root: str, net: Network, subnet6: str | None, gateway6: str | None) -> Network:
    """Add subnet6/gateway6 to a new network's record (dual-stack, Docker's --ipv6): the given
    subnet, or a ULA /64 (subnets.ula_for); the gateway is the subnet's first address unless
    given. Called under the networks lock, before the host side exists."""
    from minirt.net import subnets

    others = {n.name: n.subnet6 for n in list_networks(root) if n.subnet6 and n.name != net.name}
    subnet6, gateway6 = _subnet_and_gateway(subnet6, gateway6, subnets.parse_subnet6, others,
                                            lambda: subnets.ula_for(net.name, list(others.values())))  # fmt: skip
    from minirt.net import inet

    gateway6 = inet.canonical(gateway6)  # canonical: it names no lease, but is compared
    record = dict(net.record)
    record.update(subnet6=subnet6, gateway6=gateway6, enable_ipv6=True)
    if not explain.dry:
        os.makedirs(f"{net.dir}/leases6", mode=0o700, exist_ok=True)
    atomic_write_json(f"{net.dir}/network.json", record)
    return Network(record, net.dir)


def _setup_ipv6_host_side(net: Network, host, index: int) -> None:
    """Dual-stack networks: the bridge's IPv6 gateway address (nodad: usable at once, no
    duplicate address detection delay), IPv6 enabled on the bridge, and IPv6 forwarding.

    net.ipv6.conf.all.forwarding=1 is what Docker (and netavark) set when a network has IPv6.
    Be aware: on a host that configures its own uplink by SLAAC, a forwarding interface stops
    accepting router advertisements (unless accept_ra=2 on the uplink), so its address and
    default route expire: set accept_ra=2 on the uplink before using dual-stack networks there.
    """
    from minirt.net import sysctl

    sysctl.ensure(f"net.ipv6.conf.{net.bridge}.disable_ipv6", "0")
    host.add_address6(index, net.bridge, net.gateway6, net.prefixlen6)
    sysctl.ensure("net.ipv6.conf.all.forwarding", "1")


def _subnet_and_gateway(subnet: str | None, gateway: str | None, parse, others: dict[str, str],
                        pick) -> tuple[str, str]:  # fmt: skip
    """The given subnet (normalised, refused if it overlaps another network's) or pick()'s, and
    the given gateway (refused outside the subnet) or the subnet's first address; IPv4 and IPv6."""
    from minirt.net import subnets

    if subnet:
        addr, plen = parse(subnet)
        subnet = f"{addr}/{plen}"
        clash = [name for name, other in others.items() if not _disjoint(other, subnet)]
        if clash:
            raise ConflictError(f"subnet {subnet}: overlaps network {clash[0]!r}")
    else:
        subnet = pick()
    if gateway is None:
        gateway = subnets.gateway_of(subnet)
    elif not subnets.contains(subnet, gateway):
        raise ConfigError(f"gateway {gateway}: not inside subnet {subnet}")
    return subnet, gateway


def _disjoint(a: str, b: str) -> bool:
    from minirt.net import inet

    return not inet.overlaps(a, b)


def _setup_host_side(net: Network, host) -> int:
    """Bridge up with the gateway address, ip_forward on, the network's nft chains: all
    idempotent, so this also repairs a half-made or damaged network."""
    from minirt.net import sysctl
    from minirt.net.firewall import get_backend

    index = host.ensure_bridge(net.bridge, net.mtu)
    if net.is_gateway:  # a CNI network with isGateway: false routes nothing (the bridge plugin's IsGW)
        host.add_address(index, net.bridge, net.gateway, net.prefixlen)
        sysctl.ensure("net.ipv4.ip_forward", "1")
    # published ports reached from the host's 127.0.0.1 are DNATed out of the bridge with a
    # loopback source (then masqueraded): the kernel drops those unless route_localnet is on
    # for the bridge (what Docker does when its userland proxy is off)
    sysctl.ensure(f"net.ipv4.conf.{net.bridge}.route_localnet", "1")
    if not net.icc:
        # the icc drop sees frames between two ports of the bridge only through br_netfilter;
        # Docker turns this on for the same reason (moby setupBridgeNetFiltering)
        try:
            sysctl.ensure("net.bridge.bridge-nf-call-iptables", "1")
        except FileNotFoundError:
            raise ConfigError(f"network {net.name}: icc=false needs br_netfilter (modprobe br_netfilter)") from None
    if net.subnet6:
        _setup_ipv6_host_side(net, host, index)
    get_backend(net.firewall).setup_network(net.spec())
    return index


def remove(root: str, name: str, host) -> None:
    """Tear the network down (chains, bridge, record); refused while containers use it."""
    from minirt.net import ipam

    fd = _lock(root)
    try:
        net = load_existing(root, name)
        users = [  # owner_alive: a CNI attachment's lease counts as long as it exists (minirt/cni)
            owner["container"][:12]
            for owner in ipam.LeaseStore(f"{net.dir}/leases").leases().values()
            if ipam.owner_alive(owner)
        ]
        if users:
            raise ConflictError(f"network {name!r}: in use by container(s) {', '.join(users)}")
        _remove_locked(net, host)
        from minirt import events

        events.network(root, "destroy", net)
    finally:
        os.close(fd)


def _remove_locked(net: Network, host) -> None:
    from minirt.net import dnsd
    from minirt.net.firewall import get_backend

    dnsd.stop(net.dir)
    get_backend(net.firewall).teardown_network(net.spec())
    host.delete_link(net.bridge)
    rmtree(net.dir)
