"""The CNI verbs on the host: ADD, DEL, CHECK, STATUS and GC, with minirt's own network code.

Runs in: minirt-cni, in the runtime's (the host's) network namespace; the container's namespace
is reached by the fd of CNI_NETNS: the veth peer is created into it by fd, and its netlink socket
is opened there by switching this thread in for one socket() call (net/netlink.socket_in; CNI's
ns.Do). Interface names inside it are looked up the same way (in_netns).

ADD does what `minirt run` does for a container (net/bridge.py), each step registering its undo
first (minirt/rollback.py; the reference plugin's `success` flag + deferred ipam.ExecDel,
plugins/main/bridge/bridge.go), after writing it down in the attachment record (store.py):

    ensure the network: record, bridge + gateway, ip_forward, nft chains (net/network.py)
    claim the attachment record                                  undo: remove it
    lease an address for (containerID, ifname) (net/ipam.py)     undo: release it
    ip link add mc<hash> mtu M master BR up type veth peer name IFNAME address MAC netns NETNS
                                                                 undo: ip link del mc<hash>
    in NETNS: ip link set IFNAME up; ip addr add A/P dev IFNAME; ip route add default via G
    nft add element inet minirt ports_any { tcp . 8080 : A . 80 }   undo: value-checked delete
    hairpin on mc<hash> (published ports reached from the container's own bridge)

The network itself (bridge, chains, record) stays after the last DEL, like minirt's networks and
the reference plugin's bridge: it is shared by the attachments.

DEL is idempotent and best effort (SPEC.md, DEL): it needs neither the netns nor the record nor
prevResult, and removes what is there: the port elements that still map to this attachment's
address (from the record, or from prevResult + runtimeConfig), the host veth (named from the
key), the lease of (containerID, ifname); the record goes last, and only when the rest is done,
so a failing DEL can be called again.

GC removes every attachment of the network that cni.dev/valid-attachments does not list: the
records' attachments (as DEL), then what no record explains any more, as `minirt gc` does it
(minirt/reconcile.py: observe, then read the claims): CNI leases, `mc` veths on the network's
bridge, and port elements pointing into the subnet that no valid attachment (nor, in a root
shared with `minirt run`, any live container) claims.
"""

import os

from minirt import explain, faults
from minirt.cni import store
from minirt.cni.protocol import (
    CHECK_FAILED, CONFLICT, DEFAULT_ROOT, INVALID_CONFIG, INVALID_ENV, NOT_AVAILABLE, TRY_AGAIN, UNKNOWN_CONTAINER,
    CniError,
)  # fmt: skip


def root_of(conf, environ) -> str:
    """dataDir, else $MINIRT_ROOT (the same root as `minirt run`: shared records and leases),
    else /run/minirt-cni (a tmpfs, like every object it describes: docs/cni.md, State)."""
    return conf.data_dir or environ.get("MINIRT_ROOT") or DEFAULT_ROOT


def _owner(cid: str, ifname: str) -> dict:
    """A lease owned by an attachment, not a process (ipam.owner_alive: never stale)."""
    return {"container": cid, "ifname": ifname, "via": "cni"}


# -- namespaces ---------------------------------------------------------------------------------


def open_netns(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise CniError(INVALID_ENV, f"CNI_NETNS {path}: {e.strerror}", "a path to a network namespace") from None


def in_netns(netns_fd: int, fn, *args):
    """fn(*args) with this thread in the netns of netns_fd, then back (net/netlink.in_netns)."""
    from minirt.net.netlink import NetnsEnterError, in_netns as enter

    try:
        return enter(netns_fd, fn, *args, who=b"minirt-cni", fatal_code=1)
    except NetnsEnterError as e:
        raise CniError(INVALID_ENV, f"CNI_NETNS: not a network namespace ({e.strerror})") from None


def _mac(ifname: str) -> str | None:
    """A host link's MAC, from sysfs when /sys is this netns's (its ifindex agrees), else netlink."""
    from minirt.net.netlink import Rtnl, index_of

    try:
        with open(f"/sys/class/net/{ifname}/ifindex") as f:
            if int(f.read()) == index_of(ifname):
                with open(f"/sys/class/net/{ifname}/address") as f2:
                    return f2.read().strip()
    except (OSError, ValueError):
        pass
    host = Rtnl.host()
    try:
        link = host.link(ifname)
        return link.get_attr("IFLA_ADDRESS") if link else None
    finally:
        host.close()


# -- ADD ----------------------------------------------------------------------------------------


def cmd_add(env, conf, environ) -> dict:
    from minirt.net import ipam, linkmsgs, network
    from minirt.net.netlink import Rtnl, delete_host_link, index_of, render_delete, socket_in
    from minirt.rollback import Rollback

    root = root_of(conf, environ)
    cid, ifname, netns = env.container_id, env.ifname, env.netns
    netns_fd = open_netns(netns)
    try:
        # SPEC.md, ADD: "If an interface of the requested name already exists in the container,
        # the CNI plugin MUST return with an error" (checked before anything is made)
        if in_netns(netns_fd, index_of, ifname) is not None:
            raise CniError(CONFLICT, f"interface {ifname} already exists in {netns}")
        os.makedirs(root, mode=0o700, exist_ok=True)
        msgs = linkmsgs.load(root)  # compiled once per root: no pyroute2 import after that
        host = Rtnl.host(msgs)
        try:
            net, bridge_index = network.ensure_declared(
                root, conf.name, host, bridge=conf.bridge, subnet=conf.subnet, gateway=conf.gateway, mtu=conf.mtu,
                is_gateway=conf.is_gateway, masquerade=conf.ip_masq)  # fmt: skip
            host_if = store.host_ifname(cid, ifname)
            rec = {"containerID": cid, "ifname": ifname, "netns": netns, "network": net.name, "host_ifname": host_if}
            with Rollback() as rb:
                if not store.claim(net.dir, rec):
                    raise CniError(CONFLICT, f"attachment {cid}/{ifname} already exists on network {net.name}",
                                   "SPEC.md: ADD must not be called twice without a DEL in between")  # fmt: skip
                rb.add("# remove the attachment record", store.remove, net.dir, cid, ifname)
                rb.add(f"# release the lease of {cid}/{ifname}", ipam.release_owner, net.dir, cid, ifname)
                address = ipam.allocate(net.dir, net.subnet, net.gateway, _owner(cid, ifname))
                faults.point("cni-after-lease")
                mac = ipam.mac_for(address)
                rec.update(address=address, mac=mac)
                store.update(net.dir, rec)
                rb.add(render_delete(host_if), delete_host_link, host_if)
                if index_of(host_if) is not None:  # left by a crashed ADD of this very attachment
                    delete_host_link(host_if)
                host.create_veth(host_if, ifname, net.mtu, bridge_index, mac, netns_fd, bridge=net.bridge, pid=netns)
                faults.point("cni-after-veth")
                _container_side(netns_fd, socket_in, Rtnl, msgs, net, conf, ifname, netns, address)
                faults.point("cni-after-address")
                if conf.port_mappings:
                    _publish(net, rec, conf.port_mappings, rb)
                    faults.point("cni-after-publish")
                if conf.port_mappings or conf.hairpin:
                    from minirt.net.bridge import set_hairpin

                    set_hairpin(host_if)
                rb.release()  # success: everything stays until DEL
        finally:
            host.close()
    finally:
        os.close(netns_fd)
    mine = _result(net, conf, host_if, ifname, netns, address, mac)
    from minirt.cni.protocol import merge_results

    return merge_results(conf.prev_result, mine)


def _container_side(netns_fd, socket_in, Rtnl, msgs, net, conf, ifname: str, netns: str, address: str) -> None:
    """Inside the container: the peer up, its address and (isDefaultGateway) the default route."""
    from minirt.net.netlink import index_of

    index = in_netns(netns_fd, index_of, ifname)
    if index is None:
        raise CniError(INVALID_ENV, f"interface {ifname} vanished from {netns} right after it was created")
    ctr = Rtnl(socket_in(netns_fd), msgs, where=f"nsenter --net={netns} ")
    try:
        ctr.set_up(index, ifname)
        ctr.add_address(index, ifname, address, net.prefixlen)
        if net.is_gateway and conf.is_default_gateway:
            ctr.add_default_route(index, ifname, net.gateway)
    finally:
        ctr.close()


def _publish(net, rec: dict, mappings, rb) -> None:
    """Port mappings as elements of minirt's maps (net/firewall/ports.py), recorded first, in one
    transaction; a host port another container holds makes the kernel refuse the batch (EEXIST)."""
    from minirt.errors import FirewallError
    from minirt.net.firewall import get_backend
    from minirt.net.firewall import ports as fwports

    elements = fwports.elements(mappings, rec["address"])
    rec["elements"] = [list(e) for e in elements]
    store.update(net.dir, rec)
    fw = get_backend(net.firewall)
    rb.add(f"# unpublish {len(elements)} port element(s)", fw.unpublish, elements)
    try:
        fw.publish(elements)
    except FirewallError as e:
        if "File exists" in str(e):
            taken = ", ".join(f"{m.host_ip}:{m.host_port}/{m.proto}" for m in mappings)
            raise CniError(CONFLICT, f"host port already mapped to another container ({taken})", str(e)) from None
        raise


def _result(net, conf, host_if: str, ifname: str, netns: str, address: str, mac: str) -> dict:
    """The reference bridge plugin's shape: interfaces [bridge, host veth, container veth]."""
    gateway = net.gateway if net.is_gateway else None
    return {
        "interfaces": [
            {"name": net.bridge, "mac": _mac(net.bridge), "mtu": net.mtu},
            {"name": host_if, "mac": _mac(host_if), "mtu": net.mtu},
            {"name": ifname, "mac": mac, "mtu": net.mtu, "sandbox": netns},
        ],
        "ips": [{"address": f"{address}/{net.prefixlen}", "gateway": gateway, "interface": 2}],
        "routes": [{"dst": "0.0.0.0/0", "gw": net.gateway}] if gateway and conf.is_default_gateway else [],
        "dns": conf.dns,
    }


# -- DEL ----------------------------------------------------------------------------------------


def _attachment(conf, env, environ):
    """(the network record, the attachment record of (container, ifname)); either may be None.
    Loads the compiled delete message too, so undoing needs no pyroute2 import."""
    from minirt.net import netrecord

    root = root_of(conf, environ)
    net = netrecord.load(root, conf.name)
    if net is None:
        return None, None
    from minirt.net import linkmsgs

    linkmsgs.load(root)  # the compiled delete message (netlink.delete_host_link)
    return net, store.load(net.dir, env.container_id, env.ifname)


def cmd_del(env, conf, environ) -> None:
    cid, ifname = env.container_id, env.ifname
    net, rec = _attachment(conf, env, environ)
    if rec is None:
        rec = {"containerID": cid, "ifname": ifname, "host_ifname": store.host_ifname(cid, ifname)}
    failures = teardown(net, rec, conf)
    if failures:
        raise CniError(TRY_AGAIN, f"DEL {cid}/{ifname}: could not remove everything (call DEL again)",
                       "; ".join(failures))  # fmt: skip


def teardown(net, rec: dict, conf=None) -> list[str]:
    """Undo one attachment, newest step first, going on past failures (netavark's error list);
    returns the failures. The record is removed only when nothing failed."""
    from minirt.net import ipam
    from minirt.net.netlink import delete_host_link, index_of

    cid, ifname = rec["containerID"], rec["ifname"]
    failures = []
    elements = {tuple(e) for e in rec.get("elements") or [] if isinstance(e, list) and len(e) == 3}
    if conf is not None and conf.port_mappings:  # the record may be gone: what ADD would have made
        address = rec.get("address") or _prev_address(conf, ifname)
        if address:
            from minirt.net.firewall import ports as fwports

            elements.update(fwports.elements(conf.port_mappings, address))
    if elements:
        try:
            _unpublish_ours(net.firewall if net is not None else "nftables", elements)
        except Exception as e:  # noqa: BLE001 - collect and go on: DEL does all it can
            failures.append(f"unpublish ports: {e}")
    host_if = rec.get("host_ifname") or store.host_ifname(cid, ifname)
    try:
        if index_of(host_if) is not None:
            delete_host_link(host_if)  # ENODEV (gone with its netns meanwhile) is success
    except Exception as e:  # noqa: BLE001
        failures.append(f"delete veth {host_if}: {e}")
    if net is not None:
        try:
            ipam.release_owner(net.dir, cid, ifname)
        except Exception as e:  # noqa: BLE001
            failures.append(f"release the lease of {cid}/{ifname}: {e}")
        if not failures:
            store.remove(net.dir, cid, ifname)
    return failures


def _prev_address(conf, ifname: str) -> str | None:
    from minirt.cni.protocol import sandbox_addresses

    if not conf.prev_result:
        return None
    try:
        found = sandbox_addresses(conf.prev_result, ifname)
    except CniError:
        return None
    return found[0][0] if found else None


def _unpublish_ours(firewall: str, elements) -> None:
    """Delete the elements that are in the kernel with our value. Listing first means a DEL on a
    host without the table (or the element) sends nothing, so it cannot create the table just
    to delete from it; the delete is value-checked again by the kernel (firewall/ports.py)."""
    from minirt.net.firewall import get_backend

    fw = get_backend(firewall)
    listed = fw.published()
    ours = sorted(e for e in elements if listed.get((e[0], e[1])) == e[2])
    if ours:
        fw.unpublish(ours)


# -- CHECK --------------------------------------------------------------------------------------


def cmd_check(env, conf, environ) -> None:
    """SPEC.md, CHECK: the interfaces, addresses and routes of prevResult that ADD made, and what
    the Result does not show (the lease, the port elements, the network's chains), or an error."""
    from minirt.cni.protocol import sandbox_addresses
    from minirt.net import ipam

    if conf.prev_result is None:
        raise CniError(INVALID_CONFIG, "CHECK needs prevResult (the Result of the ADD)")
    cid, ifname = env.container_id, env.ifname
    net, rec = _attachment(conf, env, environ)
    if rec is None:
        raise CniError(UNKNOWN_CONTAINER, f"no attachment {cid}/{ifname} on network {conf.name}",
                       "it was never added, or was deleted")  # fmt: skip
    expected = sandbox_addresses(conf.prev_result, ifname)
    problems = []
    if not expected:
        problems.append(f"prevResult has no IPv4 address for {ifname} in a sandbox")
    ours = [(a, p) for a, p, _gw in expected]
    for a, _p in ours:
        owner = ipam.LeaseStore(f"{net.dir}/leases").owner_of(a)
        if owner is None or (owner.get("container"), owner.get("ifname")) != (cid, ifname):
            problems.append(f"address {a} is not leased to {cid}/{ifname}")
    problems += _check_host_side(net, rec)
    netns_fd = open_netns(env.netns)
    try:
        problems += _check_container_side(netns_fd, conf, ifname, ours)
    finally:
        os.close(netns_fd)
    problems += _check_firewall(net, rec)
    if problems:
        raise CniError(CHECK_FAILED, f"CHECK {cid}/{ifname}: {problems[0]}", "; ".join(problems))


def _check_host_side(net, rec: dict) -> list[str]:
    from minirt.net.netlink import IFF_UP, Rtnl

    host = Rtnl.host()
    try:
        link = host.link(rec["host_ifname"])
        bridge = host.link(net.bridge)
    finally:
        host.close()
    if bridge is None:
        return [f"bridge {net.bridge} is missing"]
    if link is None:
        return [f"host veth {rec['host_ifname']} is missing"]
    out = []
    if link.get_attr("IFLA_MASTER") != bridge["index"]:
        out.append(f"host veth {rec['host_ifname']} is not on bridge {net.bridge}")
    if not link["flags"] & IFF_UP:
        out.append(f"host veth {rec['host_ifname']} is down")
    return out


def _check_container_side(netns_fd: int, conf, ifname: str, addresses) -> list[str]:
    from minirt.cni.protocol import sandbox_addresses
    from minirt.net.netlink import IFF_UP, Rtnl, socket_in

    ctr = Rtnl(socket_in(netns_fd))
    try:
        link = ctr.link(ifname)
        if link is None:
            return [f"interface {ifname} is missing from the container"]
        out = []
        if not link["flags"] & IFF_UP:
            out.append(f"interface {ifname} is down")
        want_mac = next((i.get("mac") for i in conf.prev_result["interfaces"]
                         if i.get("name") == ifname and i.get("sandbox")), None)  # fmt: skip
        mac = link.get_attr("IFLA_ADDRESS")
        if want_mac and mac and want_mac.lower() != mac.lower():
            out.append(f"interface {ifname} has MAC {mac}, prevResult says {want_mac}")
        have = _addresses(ctr, link["index"])
        for a, p in addresses:
            if (a, p) not in have:
                out.append(f"address {a}/{p} is missing from {ifname}")
        routes = _routes(ctr)
        gateways = [gw for _a, _p, gw in sandbox_addresses(conf.prev_result, ifname) if gw]
        for r in conf.prev_result["routes"]:
            dst, gw = r.get("dst"), r.get("gw") or (gateways[0] if gateways else None)
            if not isinstance(dst, str) or ":" in dst:
                continue  # IPv6 routes are not ours to check (minirt-cni makes none)
            if (_canonical_prefix(dst), gw) not in routes:
                out.append(f"route {dst} via {gw} is missing from the container")
        return out
    finally:
        ctr.close()


def _canonical_prefix(dst: str) -> str:
    from minirt.net import inet

    try:
        return str(inet.prefix(dst, strict=False))
    except ValueError:
        return dst


def _addresses(rtnl, index: int) -> set[tuple[str, int]]:
    from minirt.net.netlink import AF_INET, messages

    ifaddrmsg = messages()[1]
    m = ifaddrmsg()
    m["family"] = AF_INET
    out = set()
    for a in rtnl.dump(m, 22, ifaddrmsg):  # RTM_GETADDR
        if a["index"] == index:
            out.add((a.get_attr("IFA_LOCAL") or a.get_attr("IFA_ADDRESS"), a["prefixlen"]))
    return out


def _routes(rtnl) -> set[tuple[str, str | None]]:
    """IPv4 routes of the main table as ("dst/len", gateway)."""
    from minirt.net.netlink import AF_INET, RT_TABLE_MAIN, RTM_GETROUTE, messages

    rtmsg = messages()[2]
    m = rtmsg()
    m["family"] = AF_INET
    out = set()
    for r in rtnl.dump(m, RTM_GETROUTE, rtmsg):
        if r.get_attr("RTA_TABLE") not in (None, RT_TABLE_MAIN):
            continue
        out.add((f"{r.get_attr('RTA_DST') or '0.0.0.0'}/{r['dst_len']}", r.get_attr("RTA_GATEWAY")))
    return out


def _check_firewall(net, rec: dict) -> list[str]:
    """The network's dispatch (its fwd_in element) and the attachment's port elements."""
    import json

    from minirt.net.firewall import get_backend
    from minirt.net.firewall.libnft import listing

    out = []
    rc, text, _err = listing("list map inet minirt fwd_in", json=True)
    found = []
    if rc == 0:
        for obj in json.loads(text).get("nftables", []):
            found += [e[0] for e in (obj.get("map") or {}).get("elem") or []]
    if net.bridge not in found:
        out.append(f"network {net.name}'s nftables chains are missing (bridge {net.bridge} not in fwd_in)")
    elements = rec.get("elements") or []
    if elements:
        listed = get_backend(net.firewall).published()
        for m, k, v in elements:
            if listed.get((m, k)) != v:
                out.append(f"port element {m} {{ {k} : {v} }} is missing (found {listed.get((m, k))})")
    return out


# -- STATUS -------------------------------------------------------------------------------------


def cmd_status(env, conf, environ) -> None:
    """SPEC.md, STATUS: ready (exit 0) when ADD could be served: the network's nftables batch
    and the port maps pass libnftables' dry run (nothing is changed), the bridge name is free or
    a bridge, and an address is free; otherwise error 50."""
    from minirt.net import ipam, netrecord

    root = root_of(conf, environ)
    problems = []
    net = netrecord.load(root, conf.name)
    try:
        spec = _spec_for_status(root, conf, net)
    except Exception as e:  # noqa: BLE001 - each cause is a reason the plugin is not available
        spec = None
        problems.append(str(e))
    if spec is not None:
        problems += _dry_run(spec)
        problems += _bridge_usable(spec.bridge)
    if net is not None and not problems:
        alloc = ipam.Allocator(net.subnet, {net.gateway})
        store_ = ipam.LeaseStore(f"{net.dir}/leases")
        if not any(not ipam.owner_alive(store_.owner_of(a) or {}) for a in alloc.next_candidates(None)):
            problems.append(f"no free address in {net.subnet}")
    if problems:
        raise CniError(NOT_AVAILABLE, f"network {conf.name} cannot serve ADD: {problems[0]}", "; ".join(problems))


def _spec_for_status(root: str, conf, net):
    from minirt.net import network, subnets
    from minirt.net.firewall import NetworkSpec
    from minirt.net.netlink import Rtnl

    if net is not None:
        return net.spec()
    subnet = conf.subnet
    if subnet is None:  # the pick a first ADD would make: a pool subnet no route or network uses
        host = Rtnl.host()
        try:
            taken = [f"{dst}/{plen}" for dst, plen, _oif in host.routes() if plen > 0]
        finally:
            host.close()
        from minirt.net.netrecord import list_networks

        subnet = subnets.pick_subnet(subnets.DEFAULT_POOL, taken + [n.subnet for n in list_networks(root)])
    spec = NetworkSpec(conf.name, conf.bridge or network.bridge_name(conf.name), subnet,
                       conf.gateway or subnets.gateway_of(subnet))  # fmt: skip
    spec.masquerade = conf.ip_masq
    return spec


def _dry_run(spec) -> list[str]:
    from minirt.net.firewall import ports as fwports
    from minirt.net.firewall import ruleset
    from minirt.net.firewall.libnft import context

    try:
        batch = ruleset.setup_network_batch(spec)
        ctx = context()
    except Exception as e:  # noqa: BLE001 - the bindings missing is "not available" too
        return [f"nftables: {e}"]
    ctx.set_dry_run(True)
    try:
        rc, _out, err = ctx.json_cmd({"nftables": batch})
        if rc == 0:
            rc, _out, err = ctx.cmd(fwports.DECLARE)
    finally:
        ctx.set_dry_run(False)
    return [] if rc == 0 else [f"nftables refuses the network's batch: {' '.join(err.split())}"]


def _bridge_usable(bridge: str) -> list[str]:
    from minirt.net.netlink import Rtnl

    host = Rtnl.host()
    try:
        link = host.link(bridge)
    finally:
        host.close()
    if link is None:
        return []
    info = link.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info else None
    return [] if kind == "bridge" else [f"{bridge} exists and is a {kind or 'device'}, not a bridge"]


# -- GC -----------------------------------------------------------------------------------------


def cmd_gc(env, conf, environ) -> None:
    """SPEC.md, GC: remove the resources of every attachment not in cni.dev/valid-attachments.
    The runtime runs no ADD or DEL meanwhile (SPEC.md, "Lifecycle & Ordering")."""
    from minirt.net import netrecord

    root = root_of(conf, environ)
    net = netrecord.load(root, conf.name)
    if net is None:
        return  # nothing was ever attached here
    valid = set(conf.valid_attachments)
    failures = []
    for rec in store.records(net.dir):
        if (rec["containerID"], rec["ifname"]) not in valid:
            explain.cmd(f"# attachment {rec['containerID']}/{rec['ifname']} is not valid: removing it")
            failures += teardown(net, rec)
    failures += _leftovers(root, net, valid)
    if failures:
        raise CniError(TRY_AGAIN, f"GC of network {net.name}: could not remove everything", "; ".join(failures))


def _leftovers(root: str, net, valid: set) -> list[str]:
    """What no record explains: CNI leases, `mc` veths on the bridge, port elements into the
    subnet; observed first, then the claims read (minirt/reconcile.py's order)."""
    import _socket

    from minirt.net import inet, ipam
    from minirt.net.netlink import delete_host_link

    leases = ipam.LeaseStore(f"{net.dir}/leases").leases()
    veths = [name for _i, name in _socket.if_nameindex() if store.is_host_ifname(name)]
    elements = _published_into(net)
    # claims, read after observing
    valid_ifs = {store.host_ifname(c, i) for c, i in valid}
    claimed = {}
    for rec in store.records(net.dir):
        if (rec["containerID"], rec["ifname"]) in valid:
            claimed.update({(m, k): v for m, k, v in rec.get("elements") or []})
    claimed.update(_minirt_claims(root))
    failures = []
    for owner in {(o.get("container"), o.get("ifname")) for o in leases.values() if o.get("via") == "cni"}:
        if owner not in valid:
            try:
                ipam.release_owner(net.dir, owner[0], owner[1])
            except Exception as e:  # noqa: BLE001
                failures.append(f"release the lease of {owner[0]}/{owner[1]}: {e}")
    from minirt.reconcile import _master

    for name in veths:
        if name not in valid_ifs and _master(name) == net.bridge:
            try:
                delete_host_link(name)
            except Exception as e:  # noqa: BLE001
                failures.append(f"delete veth {name}: {e}")
    stale = [(m, k, v) for (m, k), v in elements.items()
             if claimed.get((m, k)) != v and inet.contains(net.subnet, v.split(" . ")[0])]  # fmt: skip
    if stale:
        try:
            _unpublish_ours(net.firewall, stale)
        except Exception as e:  # noqa: BLE001
            failures.append(f"unpublish {len(stale)} port element(s): {e}")
    return failures


def _published_into(net) -> dict:
    from minirt.net.firewall import get_backend

    return get_backend(net.firewall).published()


def _minirt_claims(root: str) -> dict:
    """Elements that live `minirt run` containers of a shared root publish (their teardown plans)."""
    if not os.path.isdir(f"{root}/containers"):
        return {}
    from minirt import teardown
    from minirt.reconcile import _live
    from minirt.state import Store

    out = {}
    for rec in _live(Store(root)).values():
        for st in teardown.plan_of(rec):
            if st["undo"] == "ports":
                out.update({(m, k): v for m, k, v in st["elements"]})
    return out


COMMANDS = {"ADD": cmd_add, "DEL": cmd_del, "CHECK": cmd_check, "STATUS": cmd_status, "GC": cmd_gc}
