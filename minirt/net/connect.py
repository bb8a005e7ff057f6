"""`minirt network connect/disconnect`: one more interface for a running container, or one less.

Runs in: a `minirt network connect|disconnect` process, host network namespace; the container is
owned by another process (the foreground `minirt run` or a detached supervisor).

What connect does, as one would by hand (each line is printed by --explain):

    lease an address on NETWORK (net/ipam.py; owner = the container's owning process, like its
    first lease, so the same dead-owner reclaim applies)
    ip link add mr<id11>x<N> mtu M master <bridge> up type veth peer name eth<N> mtu M address <mac> netns <pid>
    nsenter -t <pid> -n ip link set eth<N> up
    nsenter -t <pid> -n ip addr add A/P dev eth<N>              (and the IPv6 one on a dual-stack network)

N counts up from 1 in connect order, as Docker names them (eth1, eth2, ...). The host end is
`mr` + 11 hex of the id + `x` + N: 15 bytes at most, never equal to a primary veth name (those
are `mr` + 12 hex), and still readable back to the container. No default route is added: the
container keeps its route through its first network, as Docker does (the gateway priority of
the first endpoint). The messages are the same compiled ones a container's start sends
(net/linkmsgs.py; the peer named ethN, its ifindex left to the kernel), through netlink.Rtnl.

State: the record's "connected" list holds one entry per added network, written under the
record's lock. The lease and the veth of each are steps of the container's teardown plan
(teardown.py), written there before they exist: whoever ends the container (its owner at exit,
the sentinel, `rm`, `gc`) undoes them with the rest, and `disconnect` carries out just that
network's steps. Connections last for one run: a restarted container comes back on its first
network only (Docker re-attaches every endpoint; see docs/networking.md).

A failed connect carries out its own steps (minirt/rollback.py holds that undo), so it leaves
no lease, veth or record change; MINIRT_FAULT=fail:connect-after-veth proves it.
"""

import os

from minirt import events, faults, ids, teardown
from minirt.errors import ConfigError, ConflictError, NoSuchObject
from minirt.rollback import Rollback

MAX_EXTRA = 9  # eth1..eth9: keeps the host name within IFNAMSIZ


def host_ifname(cid: str, n: int) -> str:
    return f"mr{cid[:11]}x{n}"


def _running(store, ref: str) -> tuple[str, dict]:
    from minirt import liveness

    cid = store.resolve(ref)
    rec = store.load(cid)
    if liveness.status(rec) != "running":
        raise ConflictError(f"container {ref}: is not running")
    cfg = rec.get("config", {})
    if cfg.get("net") != "bridge":
        raise ConfigError(f"container {ref}: uses --net {cfg.get('net')}; only bridge containers can be connected")
    return cid, rec


def _lease_owner(root: str, cid: str, rec: dict) -> dict:
    """The owner of the container's first lease (the process that tears it down), so that the
    new lease is reclaimed exactly when that one is."""
    from minirt.net import ipam, netrecord

    first = netrecord.load_existing(root, networks_of(rec)[0])
    for owner in ipam.LeaseStore(f"{first.dir}/leases").leases().values():
        if owner.get("container") == cid:
            return {"container": cid, "pid": owner["pid"], "start_time": owner.get("start_time")}
    raise ConflictError(f"container {ids.short(cid)}: has no address on its first network")


def networks_of(rec: dict) -> list[str]:
    """Every network a container is on: its first, then the connected ones in order."""
    from minirt.net import netrecord

    first = (rec.get("config") or {}).get("network") or netrecord.DEFAULT_NETWORK
    return [first] + [e["network"] for e in rec.get("connected") or []]


def connect(store, net_name: str, ref: str, aliases: list[str]) -> dict:
    """Attach running container `ref` to network `net_name`; returns the new endpoint."""
    from minirt.net import ipam, network
    from minirt.net.netlink import Rtnl

    for a in aliases:
        ids.check_alias(a)
    cid, rec = _running(store, ref)
    if net_name in networks_of(rec):
        raise ConflictError(f"container {ref}: is already connected to network {net_name!r}")
    if len(rec.get("connected") or []) >= MAX_EXTRA:
        raise ConflictError(f"container {ref}: already has {MAX_EXTRA} extra networks")
    host = Rtnl.host()
    with Rollback() as rb:
        rb.add("# close the host netlink socket", host.close)
        net, bridge_index = network.ensure(store.root, net_name, host)
        used = {e["eth"] for e in rec.get("connected") or []}
        n = next(i for i in range(1, MAX_EXTRA + 1) if f"eth{i}" not in used)
        eth, hostif = f"eth{n}", host_ifname(cid, n)
        pid = rec["pid"]
        owner = _lease_owner(store.root, cid, rec)
        # the lease and the veth go into the container's teardown plan before they exist, so
        # whoever ends the container (its owner, the sentinel, rm, gc) undoes them too
        steps = teardown.network_steps(net.name, hostif)
        store.update(cid, lambda r: r.setdefault("teardown", teardown.plan_of(r)).extend(steps))
        rb.add(f"# carry out the plan's steps for network {net.name}", _undo_steps, store, cid, steps)
        if net.subnet6:
            address, address6 = ipam.allocate6(net.dir, net.subnet, net.gateway, net.subnet6, net.gateway6, owner)
        else:
            address, address6 = ipam.allocate(net.dir, net.subnet, net.gateway, owner), None
        events.network(store.root, "connect", net, cid)  # its disconnect: the plan's lease step
        faults.point("connect-after-lease")
        if net.dns:
            from minirt.net import dnsd

            dnsd.ensure(store.root, net)
        mac = ipam.mac_for(address)
        netns_fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        rb.add("# close the container netns fd", os.close, netns_fd)
        host.create_veth(hostif, eth, net.mtu, bridge_index, mac, netns_fd, bridge=net.bridge, pid=pid)
        faults.point("connect-after-veth")
        ctr = Rtnl.in_netns(netns_fd, where=f"nsenter -t {pid} -n ")
        rb.add("# close the container netlink socket", ctr.close)
        index = ctr.link_index(eth)
        ctr.set_up(index, eth)
        ctr.add_address(index, eth, address, net.prefixlen)
        if address6:
            ctr.add_address6(index, eth, address6, net.prefixlen6)
        faults.point("connect-after-address")
        endpoint = {"network": net.name, "eth": eth, "host_ifname": hostif, "address": address,
                    "prefixlen": net.prefixlen, "gateway": net.gateway, "mac": mac, "bridge": net.bridge,
                    "aliases": aliases}  # fmt: skip
        if address6:
            endpoint.update(address6=address6, prefixlen6=net.prefixlen6, gateway6=net.gateway6)
        store.update(cid, lambda r: r.setdefault("connected", []).append(endpoint))
        # success: keep the lease and the veth; only the sockets and fds are closed
        rb.release()
    for fn in (host.close, ctr.close):
        fn()
    os.close(netns_fd)
    return endpoint


def disconnect(store, net_name: str, ref: str, force: bool) -> None:
    """Remove the interface `connect` added (the first network cannot be disconnected: that
    would leave the container without its default route; Docker allows it, minirt refuses)."""
    from minirt.net import netrecord

    cid = store.resolve(ref)
    rec = store.load(cid)
    nets = networks_of(rec)
    if net_name not in nets:
        raise ConflictError(f"container {ref}: is not connected to network {net_name!r}")
    if net_name == nets[0]:
        raise ConfigError(f"container {ref}: {net_name!r} is its first network; only networks added with "
                          "`network connect` can be disconnected")  # fmt: skip
    if netrecord.load(store.root, net_name) is None and not force:
        raise NoSuchObject(f"network {net_name!r}: no such network")
    steps = [st for st in teardown.plan_of(rec) if st.get("network") == net_name]
    _undo_steps(store, cid, steps)
    store.update(cid, lambda r: r.__setitem__(
        "connected", [e for e in r.get("connected") or [] if e["network"] != net_name]))  # fmt: skip


def _undo_steps(store, cid: str, steps: list[dict]) -> None:
    """Carry out `steps` of the container's plan now (the container runs: its veth is deleted
    explicitly), then drop the ones that are done from the plan on disk."""
    from minirt.errors import CleanupError

    left, failures = teardown.carry_out(store.root, cid, steps)
    done = [st for st in steps if st not in left]
    store.update(cid, lambda r: r.__setitem__("teardown", [st for st in teardown.plan_of(r) if st not in done]))
    if failures:
        raise CleanupError(failures)


