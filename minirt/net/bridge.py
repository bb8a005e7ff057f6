"""The bridge driver: attach one container to a bridge network, and detach it.

Runs in: the minirt parent, host network namespace, after the container process has unshared
its namespaces (NS_READY) and before it is released (NET_READY).

What it does, as the tutorial does it by hand (each line is printed by --explain):

    lease an address (net/ipam.py: a file per address, O_EXCL, under the network lock)
    ip link add mr<id12> mtu M master minirt0 up type veth peer name eth0 ... netns <pid>
    nsenter -t <pid> -n ip addr add A/P dev eth0
    nsenter -t <pid> -n ip route add default via G

The veth is created in one RTM_NEWLINK with its peer already inside the container's netns (by
fd), up, with ifindex 2, and its host end already enslaved and up. The four messages are
pyroute2's, compiled once and filled in per container (net/linkmsgs.py: importing pyroute2
would cost more than the rest of the start together). `lo` is brought up by the container itself
(net/loopback.py, an ioctl). Forwarding and masquerade are per network; the only per-container
nft change is a published port's map element.

Undoing: the lease and the veth are steps of the container's teardown plan from the start
(written with its record), and the published elements are added to the plan before they are
published (teardown.py). After the exit the kernel removes the pair with the container's
netns (~26 ms later, off the user's path: see docs/performance.md); a rollback, where the
container is still alive, deletes it explicitly.
"""

import os

from minirt import events, explain, faults, timing
from minirt.errors import ConfigError
from minirt.net import network
from minirt.net.netlink import ETH0_INDEX, Rtnl, delete_host_link, index_of, render_hairpin, socket_in
from minirt.teardown import host_ifname


def attach(c, rb, root: str) -> dict:
    """Connect container `c` (runtime.Container, its child past NS_READY); returns the
    NET_READY payload. Every step registers its undo on `rb` before it acts."""
    from minirt.net import dns, ipam, linkmsgs

    cfg = c.cfg
    pid = c.child.pid
    msgs = linkmsgs.load(root)  # compiled by pyroute2 once, cached: no import here after that
    timing.mark("messages-loaded")
    name = cfg.network or network.DEFAULT_NETWORK
    net = network.load(root, name)
    bridge_index = index_of(net.bridge) if net else None
    if bridge_index is None:  # first use, or the bridge vanished: the full pyroute2 path
        host = Rtnl.host()
        rb.add("# close the host netlink socket", host.close)
        net, bridge_index = network.ensure(root, name, host)
    timing.mark("network-ready")

    ifname = host_ifname(cfg.id)
    # The lease and veth steps of the plan are in the record already (runtime.Container), and
    # the sentinel and "carry out the plan" were registered before the cgroup was made.

    owner = {"container": cfg.id, "pid": c.record["owner"]["pid"], "start_time": c.record["owner"]["start_time"]}
    previous = (c.record.get("network") or {}).get("address") if c.restarting else None
    address6 = None
    if net.subnet6:  # dual-stack: both leases under one hold of the network lock
        address, address6 = _allocate_dual(c, net, owner, previous)
    else:
        _refuse_v6_ports(cfg.ports, net)
        address = ipam.allocate(net.dir, net.subnet, net.gateway, owner, prefer=previous)
    # Docker's `network connect` of the container; written with the lease, whose release (the
    # plan's lease step, teardown.py) writes the `disconnect`: the two always pair up
    events.network(root, "connect", net, cfg.id)
    faults.point("after-lease")
    timing.mark("leased")
    if net.dns:  # after our lease exists: it keeps the responder alive (net/dnsd.py)
        from minirt.net import dnsd

        dnsd.ensure(root, net)
        timing.mark("dns")

    done_publishing = _begin_publishing(c, net, address, address6) if cfg.ports else None

    if explain.dry:  # no container yet: nothing to open, every line printed (netlink.py)
        netns_fd = -1
    else:
        netns_fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        rb.add("# close the container netns fd", os.close, netns_fd)
    mac = ipam.mac_for(address)
    host_tx = Rtnl.host(msgs)
    rb.add("# close the host netlink socket", host_tx.close)
    if c.restarting:
        _wait_gone(ifname)  # the previous run's pair may still be on its way out with its netns
    host_tx.create_veth(ifname, "eth0", net.mtu, bridge_index, mac, netns_fd, bridge=net.bridge, pid=pid,
                        peer_index=ETH0_INDEX)  # fmt: skip
    faults.point("after-veth")
    timing.mark("veth")

    ctr_tx = Rtnl(None if explain.dry else socket_in(netns_fd), msgs, where=f"nsenter -t {pid} -n ")
    try:
        ctr_tx.set_up(ETH0_INDEX, "eth0")
        ctr_tx.add_address(ETH0_INDEX, "eth0", address, net.prefixlen)
        faults.point("after-address")
        if not net.internal:  # an internal network has no way out: no default route
            ctr_tx.add_default_route(ETH0_INDEX, "eth0", net.gateway)
        if address6:
            _container_side6(ctr_tx, pid, net, address6)
    finally:
        ctr_tx.close()
    timing.mark("container-side")
    if cfg.ports:
        done_publishing()  # before the container starts: its ports work from its first instruction
        set_hairpin(ifname)
        faults.point("after-publish")
    try:
        with open("/etc/resolv.conf") as f:
            host_resolv = f.read()
    except OSError:
        host_resolv = ""
    extra6 = {"address6": address6, "prefixlen6": net.prefixlen6, "gateway6": net.gateway6} if address6 else {}
    return {
        "network": net.name,
        "address": address,
        "prefixlen": net.prefixlen,
        "gateway": net.gateway,
        **extra6,
        "mac": mac,
        "host_ifname": ifname,
        "bridge": net.bridge,
        "resolv_conf": dns.network_resolv_conf(host_resolv, net.gateway)
        if net.dns
        else dns.container_resolv_conf(host_resolv, cfg.dns or []),
        "ports": [m.to_dict() for m in cfg.ports or []],
    }


def _begin_publishing(c, net, address: str, address6: str | None):
    """Add the published ports' map elements as soon as the address is leased: the transaction
    runs in the nft helper (on the other core) while the veth is built, and the function
    returned waits for it. A DNAT to an address with no veth yet goes nowhere, as a port that
    nothing listens on; the container is not released before it is done."""
    from minirt import teardown
    from minirt.net.firewall import get_backend
    from minirt.net.firewall import ports as fwports

    fw = c.firewall if c.firewall is not None and c.firewall.name == net.firewall else get_backend(net.firewall)
    elements = fwports.elements(c.cfg.ports, address, address6)
    c.add_step(teardown.ports_step(net.name, fw.name, elements))  # written down, then made
    return fw.begin_publish(elements)


def set_hairpin(ifname: str) -> None:
    """Hairpin mode on a bridge port. A container reaching its own published port through a
    host address: with br_netfilter the DNATed frame is bridged back out of the port it came in
    on, which the bridge only does with hairpin mode on (what Docker sets when its proxy is off)."""
    if explain.dry:
        explain.cmd(render_hairpin(ifname))
        return
    try:  # sysfs is one write; it shows our netns's links unless /sys is another netns's
        with open(f"/sys/class/net/{ifname}/brport/hairpin_mode", "w") as f:
            f.write("1")
        explain.cmd(render_hairpin(ifname))  # the same change as set_hairpin's, by sysfs
    except FileNotFoundError:
        host = Rtnl.host()
        try:
            host.set_hairpin(ifname)
        finally:
            host.close()


def _refuse_v6_ports(ports, net) -> None:
    """A port bound to an IPv6 host address needs a dual-stack network: refused before any
    lease is taken."""
    for m in ports or []:
        if ":" in m.host_ip:
            raise ConfigError(
                f"port {m}: network {net.name} has no IPv6 (create it with `minirt network create --ipv6`)"
            )


def _allocate_dual(c, net, owner: dict, previous: str | None) -> tuple[str, str]:
    from minirt.net import ipam

    previous6 = (c.record.get("network") or {}).get("address6") if c.restarting else None
    return ipam.allocate6(net.dir, net.subnet, net.gateway, net.subnet6, net.gateway6, owner, previous, previous6)


def _container_side6(ctr_tx, pid: int, net, address6: str) -> None:
    """eth0's IPv6 address (nodad: no DAD delay, the address is unique by IPAM) and, unless the
    network is internal, the IPv6 default route via the bridge's gateway6."""
    ctr_tx.add_address(ETH0_INDEX, "eth0", address6, net.prefixlen6)
    if not net.internal:
        ctr_tx.add_default_route(ETH0_INDEX, "eth0", net.gateway6)


def _wait_gone(ifname: str) -> None:
    """Delete a leftover veth of this container (start/restart only) and wait until the name is
    free: the kernel unregisters a dying netns's devices asynchronously."""
    import time

    if index_of(ifname) is None:
        return
    delete_host_link(ifname)
    deadline = time.monotonic() + 5
    while index_of(ifname) is not None and time.monotonic() < deadline:
        time.sleep(0.01)
