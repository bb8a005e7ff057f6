"""Reconcile, don't trust: make the host match the live records (`minirt gc`, `network reload`).

Runs in: `minirt gc` and `minirt network reload`, host namespaces.

This is CNI's GC verb and netavark's firewall reload, applied to everything minirt owns:

1. Every container a crash left "dead" (created/running, but neither its init nor its owner
   runs) is finalized from its own teardown plan (teardown.finalize_dead): exact and
   value-checked, the same code the owner and the sentinel run. An exited container whose
   plan kept steps that failed gets them retried.
2. Then the host is observed, and only then are the live records read. A container writes each
   teardown step before the change it undoes (teardown.py), so any object seen in the first
   pass that belongs to a live container is claimed by a record read in the second; what no
   live record claims is left over from something, and removed:

       leases          networks/<net>/leases{,6}/<ip> of a container that is not live and
                       whose owner process is gone (ipam.release_owner: inode-checked)
       map elements    ports_any, ports_ip, ports6_any, ports6_ip of `inet minirt` whose key
                       no live plan claims with that value (deleted value-checked)
       veths           host links named mr<12 hex> or mr<11 hex>x<N> that no live plan claims
       DNS responders  of networks with no live lease, decided under the network's lock, the
                       lock the responder's own idle exit and a starting container take
       cgroups         <parent>/<64 hex> in each hierarchy, under the configured parent and
                       the parents the records name, that no live plan claims: removed when
                       its id is a container of this root, or when it holds no process
                       (another root's container is never without its init)
       directories     containers/<id> without a readable record, whose creator is gone
       names           names/<name> whose container directory is gone
       trace chains    trace-<pid>-pre/out in `inet minirt` of a `minirt trace` that was killed
                       (traces/<pid>.json names them; its pid + start time no longer run)

Nothing outside minirt's table, state directory and `mr` links is looked at, let alone
removed; and of those, only what belongs to this state root's networks (an element pointing
into one of its subnets, a veth on one of its bridges or on none), so a second MINIRT_ROOT
sharing the network namespace keeps what is its own. `gc --dry-run` lists the same lines
without changing anything; `--explain` prints the commands as they run.
"""

import os
import re

from minirt import ids, liveness, procfs, teardown
from minirt.net import ipam

_VETH = re.compile(r"mr[0-9a-f]{12}|mr[0-9a-f]{11}x[1-9]")


class Finding:
    """One thing to remove: a line for the user and the function that removes it."""

    __slots__ = ("what", "fix")

    def __init__(self, what: str, fix) -> None:
        self.what, self.fix = what, fix


def gc(store, dry_run: bool = False) -> list[str]:
    """Finalize dead containers, then remove what no live container owns; returns one line
    per thing removed (or, with dry_run, that would be)."""
    done = []
    for cid in store.ids():
        rec = _load(store, cid)
        if rec is None or not teardown.unfinished(rec):
            continue
        removed = (rec.get("config") or {}).get("rm")
        why = (
            "dead" if liveness.status(rec) == "dead" else f"exited with {len(rec['teardown'])} failed teardown step(s)"
        )
        done.append(f"container {ids.short(cid)}: {why}; carry out its teardown plan, then "
                    f"{'remove it (--rm)' if removed else 'keep it as exited'}")  # fmt: skip
        if not dry_run:
            teardown.finalize_dead(store, cid)
    for f in findings(store):
        done.append(f.what)
        if not dry_run:
            f.fix()
    return done


def republish(store) -> list[str]:
    """`network reload`: the published elements every live plan claims (after `nft flush
    ruleset`, say); adding an element that is there with the same value changes nothing."""
    from minirt.net.firewall import get_backend

    out = []
    for cid, rec in _live(store).items():
        for st in teardown.plan_of(rec):
            if st["undo"] == "ports" and st["elements"]:
                get_backend(st.get("firewall") or "nftables").publish([tuple(e) for e in st["elements"]])
                out.append(f"ports of {ids.short(cid)}: {len(st['elements'])} element(s)")
    return out


def findings(store) -> list[Finding]:
    from minirt.net import netrecord

    root = store.root
    # 1. observe
    nets = netrecord.list_networks(root)
    leases = {n.name: _leases(n) for n in nets}
    veths = sorted(name for _i, name in _if_nameindex() if _VETH.fullmatch(name))
    elements = _published() if nets else {}
    orphans = [cid for cid in store.ids() if _load(store, cid) is None]
    cgroup_dirs = _cgroup_dirs(store)
    # 2. claims of the live records, read after
    live = _live(store)
    claimed_veths, claimed_elements, claimed_cgroups = set(), {}, set()
    for rec in live.values():
        for st in teardown.plan_of(rec):
            if st["undo"] == "cgroup":
                claimed_cgroups.update(st["dirs"].values())
            elif st["undo"] == "veth":
                claimed_veths.add(st["ifname"])
            elif st["undo"] == "ports":
                claimed_elements.update({(m, k): v for m, k, v in st["elements"]})

    # a root shared with minirt-cni: its attachments live from CNI ADD to DEL/GC, with no process
    # and no record of ours; their elements are claimed by their attachment records (their
    # leases never look stale, ipam.owner_alive; their `mc` veths are not ours to judge)
    from minirt.cni import store as cnistore

    for n in nets:
        claimed_elements.update(cnistore.claimed_elements(n.dir))

    subnets = [sn for n in nets for sn in (n.subnet, n.subnet6) if sn]
    bridges = {n.bridge for n in nets}
    out = []
    for n in nets:
        for cid in sorted({o.get("container") for _a, o in leases[n.name] if o.get("container") not in live
                           and not ipam.owner_alive(o)}):  # fmt: skip
            addrs = ", ".join(a for a, o in leases[n.name] if o.get("container") == cid)
            out.append(Finding(f"lease {n.name}/{addrs} of {ids.short(cid or '?')} (not running)",
                               _release(n.dir, cid)))  # fmt: skip
    for (m, k), v in sorted(elements.items()):
        if claimed_elements.get((m, k)) != v and _in_any(v.split(" . ")[0], subnets):
            out.append(Finding(f"element inet minirt {m} {{ {k} : {v} }} (no running container publishes it)",
                               _unpublish((m, k, v))))  # fmt: skip
    for name in veths:
        if name not in claimed_veths and _master(name) in bridges | {None}:
            out.append(Finding(f"veth {name} (no running container owns it)", _delete_link(name)))
    ours = set(store.ids())
    for d in cgroup_dirs:
        cid = os.path.basename(d)
        if d not in claimed_cgroups and (cid in ours or not _cgroup_procs(d)):
            out.append(Finding(f"cgroup {d} (no running container owns it)", _remove_cgroup(d)))
    for n in nets:
        out += _idle_responder(n, leases[n.name])
    gone = set()
    for cid in orphans:
        pid, started = store.dir_owner(cid)
        if not procfs.is_alive(pid, started):
            gone.add(cid)
            out.append(Finding(f"directory containers/{ids.short(cid)} (no record, its creator is gone)",
                               _remove_dir(store, cid)))  # fmt: skip
    out += _stale_names(store, gone)  # last: a name can point at a directory removed above
    out += _dead_traces(root)
    return out


def _dead_traces(root: str) -> list[Finding]:
    """The trace chains of `minirt trace` processes that were killed (minirt/trace/session.py)."""
    from minirt.trace import session

    out = []
    for s in session.dead(root):
        pid = int(s["pid"])
        out.append(Finding(f"trace of pid {pid} (its process is gone): chains {', '.join(s.get('chains') or [])} "
                           f"in {s.get('table')}", lambda p=pid: session.remove(root, p)))  # fmt: skip
    return out


def _in_any(address: str, subnets: list[str]) -> bool:
    """An element points into one of this state root's networks: ours to judge. (Another
    MINIRT_ROOT in the same network namespace shares the table; its elements are not ours.)"""
    from minirt.net import inet

    for sn in subnets:
        try:
            if inet.contains(sn, address):
                return True
        except ValueError:
            continue
    return False


def _master(ifname: str) -> str | None:
    """The bridge a link is enslaved to (sysfs), or None when it has none: a veth on another
    state root's bridge is that root's, not ours."""
    try:
        return os.path.basename(os.readlink(f"/sys/class/net/{ifname}/master"))
    except OSError:
        return None


def _load(store, cid: str) -> dict | None:
    try:
        return store.load(cid)
    except (FileNotFoundError, ValueError):
        return None


def _live(store) -> dict[str, dict]:
    out = {}
    for cid in store.ids():
        rec = _load(store, cid)
        if rec is not None and liveness.live(rec):
            out[cid] = rec
    return out


def _leases(net) -> list[tuple[str, dict]]:
    out = []
    for sub in ("leases", "leases6"):
        out += list(ipam.LeaseStore(f"{net.dir}/{sub}").leases().items())
    return out


def _if_nameindex() -> list[tuple[int, str]]:
    import _socket

    return _socket.if_nameindex()


def _published() -> dict:
    from minirt.net.firewall import get_backend

    return get_backend("nftables").published()


def _release(net_dir: str, cid: str):
    return lambda: ipam.release_owner(net_dir, cid)


def _unpublish(element: tuple):
    from minirt.net.firewall import get_backend

    return lambda: get_backend("nftables").unpublish([element])


def _delete_link(name: str):
    from minirt.net import netlink

    return lambda: netlink.delete_host_link(name)


def _idle_responder(net, leases) -> list[Finding]:
    from minirt.net import dnsd

    pid = dnsd.running(net.dir)
    if not pid or any(ipam.owner_alive(o) for _a, o in leases):
        return []

    def stop() -> None:
        fd = ipam._lock(net.dir, create=False)  # the lock a starting container holds (dnsd.py)
        try:
            if not any(ipam.owner_alive(o) for _a, o in _leases(net)):
                dnsd.stop(net.dir)
        finally:
            if fd is not None:
                os.close(fd)

    return [Finding(f"dns responder of network {net.name} (pid {pid}; no container left)", stop)]


def _cgroup_dirs(store) -> list[str]:
    """Container cgroups (directories named by a 64-hex id) under the configured parent and
    under every parent a record of this root names, in every hierarchy."""
    from minirt import cgroups
    from minirt.cgroups import layout

    parents = set()
    try:
        probe = cgroups.for_container("0" * 64, layout.configured_parent())
        parents.update(os.path.dirname(d) for d in probe.dirs.values())
    except (OSError, ValueError):
        pass
    for cid in store.ids():
        rec = _load(store, cid)
        parents.update(os.path.dirname(d) for d in ((rec or {}).get("cgroup") or {}).get("dirs", {}).values())
    out = []
    for p in sorted(parents):
        try:
            names = os.listdir(p)
        except OSError:
            continue
        out += [f"{p}/{n}" for n in names if ids.is_full_id(n) and os.path.isdir(f"{p}/{n}")]
    return out


def _cgroup_procs(d: str) -> list[int]:
    from minirt.cgroups import fsutil

    return fsutil.read_pids(d)


def _remove_cgroup(d: str):
    from minirt.cgroups import fsutil

    def fix() -> None:
        fsutil.kill_pids(lambda: fsutil.read_pids(d))
        fsutil.rmdir(d)

    return fix


def _remove_dir(store, cid: str):
    return lambda: store.remove(cid)


def _stale_names(store, gone: set) -> list[Finding]:
    try:
        names = sorted(os.listdir(f"{store.root}/names"))
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        owner = store.name_owner(name)
        if owner and (owner in gone or not os.path.isdir(store.container_dir(owner))):
            out.append(Finding(f"name {name} (its container {ids.short(owner)} is gone)",
                               lambda n=name, o=owner: store.release_name(n, o)))  # fmt: skip
    return out
