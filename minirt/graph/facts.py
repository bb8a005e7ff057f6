"""Read what the graph is drawn from: the kernel's view and minirt's records, as plain data.

Runs in: `minirt network graph` and `minirt inspect --plumbing`, host network namespace, as
root (a container's netns is entered for one socket() call; listing nft needs CAP_NET_ADMIN).

Everything is gathered into one JSON-able dict, so model.py stays pure and its unit tests feed
it synthetic facts:

    {"links":      [link, ...]                  the host netns's links (RTM_GETLINK dump)
     "uplink":     {"name", "gateway"} | None   the IPv4 default route's device
     "elements":   [[map, key, value], ...]     ports_any, ports_ip, ports6_any, ports6_ip
     "nft":        "ok" | "no table" | "<error>"
     "networks":   [network.json + {"leases": {ip: owner}, "leases6": {...}}, ...]
     "containers": [{"record": state.json, "status": liveness.status,
                     "netns": {"links": [link, ...]} | None}, ...]}

    link = {"index", "name", "kind" (bridge, veth, ... or None), "master" (a name or None),
            "peer_index" (IFLA_LINK: a veth's peer ifindex, in the peer's netns),
            "up", "mac", "addresses": ["10.88.0.1/24", ...]}

Links and addresses come from rtnetlink dumps through net/netlink.py's transport and
pyroute2's message classes (no `ip` process, no pyroute2 package __init__); the elements from
firewall/ports.listed(), which only *lists* the maps as JSON (never fed back: the 1.0.6 bug,
docs/networking.md). Containers are read in the order the kernel is: links first, records
after (reconcile.py's order), so a container started in between shows as a record whose veth
is missing rather than the reverse: run the command again and it is gone.
"""

import os

RTM_GETADDR = 22  # linux/rtnetlink.h
AF_UNSPEC = 0


def gather(root: str) -> dict:
    from minirt.net.netlink import Rtnl

    host = Rtnl.host()
    try:
        links = read_links(host)
        uplink = read_uplink(host, links)
    finally:
        host.close()
    networks = read_networks(root)
    elements, nft = read_elements() if networks or _has_minirt_links(links) else ([], "not read (no network)")
    return {"links": links, "uplink": uplink, "elements": elements, "nft": nft, "networks": networks,
            "containers": read_containers(root)}  # fmt: skip


def _has_minirt_links(links: list[dict]) -> bool:
    return any(link["name"].startswith("mr") for link in links)


def read_links(rtnl) -> list[dict]:
    """Every link of the socket's netns with its addresses (two dumps)."""
    from minirt.net.linkmsgs import messages
    from minirt.net.netlink import RTM_GETLINK

    ifinfmsg, ifaddrmsg, _rtmsg = messages()
    raw = rtnl.dump(ifinfmsg(), RTM_GETLINK, ifinfmsg)
    names = {m["index"]: m.get_attr("IFLA_IFNAME") for m in raw}
    links = []
    for m in raw:
        info = m.get_attr("IFLA_LINKINFO")
        links.append({
            "index": m["index"],
            "name": m.get_attr("IFLA_IFNAME"),
            "kind": info.get_attr("IFLA_INFO_KIND") if info else None,
            "master": names.get(m.get_attr("IFLA_MASTER")),
            "peer_index": m.get_attr("IFLA_LINK") if m.get_attr("IFLA_LINK") != m["index"] else None,
            "up": bool(m["flags"] & 1),
            "mac": m.get_attr("IFLA_ADDRESS"),
            "addresses": [],
        })  # fmt: skip
    by_index = {link["index"]: link for link in links}
    a = ifaddrmsg()
    a["family"] = AF_UNSPEC
    for m in rtnl.dump(a, RTM_GETADDR, ifaddrmsg):
        link = by_index.get(m["index"])
        addr = m.get_attr("IFA_LOCAL") or m.get_attr("IFA_ADDRESS")
        if link is not None and addr and not addr.startswith("fe80:"):
            link["addresses"].append(f"{addr}/{m['prefixlen']}")
    return links


def read_uplink(rtnl, links: list[dict]) -> dict | None:
    """The IPv4 default route's device and gateway (what `ip route show default` names)."""
    from minirt.net.linkmsgs import messages
    from minirt.net.netlink import AF_INET, RT_TABLE_MAIN, RTM_GETROUTE

    rtmsg = messages()[2]
    m = rtmsg()
    m["family"] = AF_INET
    names = {link["index"]: link["name"] for link in links}
    for r in rtnl.dump(m, RTM_GETROUTE, rtmsg):
        if r["dst_len"] == 0 and r.get_attr("RTA_TABLE") in (None, RT_TABLE_MAIN) and r.get_attr("RTA_OIF"):
            return {"name": names.get(r.get_attr("RTA_OIF"), f"if{r.get_attr('RTA_OIF')}"),
                    "gateway": r.get_attr("RTA_GATEWAY")}  # fmt: skip
    return None


def read_elements() -> tuple[list[list[str]], str]:
    """The published-port elements of `inet minirt`, and how the listing went."""
    try:
        from minirt.net.firewall import ports

        listed = ports.listed()
    except Exception as e:  # noqa: BLE001 - no bindings, no permission: the graph says so, in red
        return [], f"cannot list inet minirt: {e}"
    return [[m, k, v] for (m, k), v in sorted(listed.items())], "ok"


def read_networks(root: str) -> list[dict]:
    from minirt.net import ipam, netrecord
    from minirt.state import read_json

    out = []
    for net in netrecord.list_networks(root):
        rec = dict(read_json(f"{net.dir}/network.json"))
        rec["leases"] = ipam.LeaseStore(f"{net.dir}/leases").leases()
        rec["leases6"] = ipam.LeaseStore(f"{net.dir}/leases6").leases() if net.subnet6 else {}
        out.append(rec)
    return out


def read_containers(root: str) -> list[dict]:
    """Every record, its status, and for a running one the links of its own netns."""
    from minirt import liveness
    from minirt.state import Store

    store = Store(root)
    out = []
    for _cid, rec in store.records():
        status = liveness.status(rec)
        out.append({"record": rec, "status": status, "netns": read_netns(rec["pid"]) if status == "running" else None})
    return out


def read_netns(pid: int) -> dict | None:
    """The links of a container's netns, through a socket opened inside it (netlink.socket_in);
    None if the process went away meanwhile."""
    from minirt.net.netlink import Rtnl

    try:
        fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        inode = os.readlink(f"/proc/{pid}/ns/net")
        rtnl = Rtnl.in_netns(fd)
    except OSError:
        os.close(fd)
        return None
    try:
        return {"inode": inode, "links": read_links(rtnl)}
    finally:
        rtnl.close()
        os.close(fd)
