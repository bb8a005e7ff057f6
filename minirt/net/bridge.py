"""The bridge driver: attach one container to a bridge network, and detach it.

Runs in: the minirt parent, host network namespace, after the container process has unshared
its namespaces (NS_READY) and before it is released (NET_READY).

What it does, as the tutorial does it by hand (each line is printed by --explain):

    lease an address (net/ipam.py: a file per address, O_EXCL, under the network lock)
    ip link add mr<id12> mtu M master minirt0 up type veth peer name eth0 ... netns <pid>
    ip link set eth0 up; ip addr add A/P dev eth0; ip route add default via G   (container side)

The veth is created in one RTM_NEWLINK with its peer already inside the container's netns (by
fd) and its host end already enslaved and up. `lo` is brought up by the container itself
(net/loopback.py, an ioctl). Detaching does not delete the veth: when the container's last
process exits its netns is destroyed and the kernel removes the pair (~26 ms later, off the
user's path; python-stack.md). Only a rollback, where the container is still alive, deletes it
explicitly. No per-container nft change is needed: forwarding and masquerade are per network.
"""

import os

from minirt import explain, faults, ids
from minirt.net import network, sentinel
from minirt.net.netlink import Rtnl


def host_ifname(cid: str) -> str:
    """mr + short id: 14 bytes, under IFNAMSIZ, and maps back to the container."""
    return "mr" + ids.short(cid)


def attach(c, rb, root: str) -> dict:
    """Connect container `c` (runtime.Container, its child past NS_READY); returns the
    NET_READY payload. Every step registers its undo on `rb` before it acts."""
    from minirt.net import dns, ipam

    cfg = c.cfg
    pid = c.child.pid
    host = Rtnl.host()
    rb.add("# close the host netlink socket", host.close)
    net, bridge_index = network.ensure(root, cfg.network or network.DEFAULT_NETWORK, host)

    ifname = host_ifname(cfg.id)
    # Registered first, so it runs last: by then rollback or teardown has done everything.
    w = sentinel.start(net.dir, cfg.id, ifname, host)
    rb.add("# dismiss the sentinel", sentinel.dismiss, w)

    owner = {"container": cfg.id, "pid": c.record["owner"]["pid"], "start_time": c.record["owner"]["start_time"]}
    rb.add(f"# release the address of {ids.short(cfg.id)} in {net.name}", ipam.release_owner, net.dir, cfg.id)
    address = ipam.allocate(net.dir, net.subnet, net.gateway, owner)
    faults.point("after-lease")

    netns_fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    rb.add("# close the container netns fd", os.close, netns_fd)
    mac = ipam.mac_for(address)
    rb.add(f"# delete veth {ifname}", _delete_veth, c, host, ifname)
    host.create_veth(ifname, "eth0", netns_fd, pid, net.mtu, bridge_index, net.bridge, mac)
    faults.point("after-veth")

    ctr = Rtnl.in_netns(netns_fd)
    try:
        eth0 = ctr.link_index("eth0")
        ctr.set_up(eth0, "eth0")
        ctr.add_address(eth0, "eth0", address, net.prefixlen)
        faults.point("after-address")
        ctr.add_default_route(net.gateway, eth0, "eth0")
    finally:
        ctr.close()

    try:
        with open("/etc/resolv.conf") as f:
            host_resolv = f.read()
    except OSError:
        host_resolv = ""
    return {
        "network": net.name,
        "address": address,
        "prefixlen": net.prefixlen,
        "gateway": net.gateway,
        "mac": mac,
        "host_ifname": ifname,
        "bridge": net.bridge,
        "resolv_conf": dns.container_resolv_conf(host_resolv, cfg.dns or []),
    }


def _delete_veth(c, host, ifname: str) -> None:
    if c.child.reaped:
        # The container's netns dies with its last process: the kernel deletes the pair.
        explain.cmd(f"# {ifname}: the kernel deletes it with the container's network namespace")
        return
    explain.cmd(f"ip link del {ifname}")
    host.delete_link(ifname)
