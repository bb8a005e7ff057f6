"""The teardown plan: every host change of a container, written down before it is made, and the
one executor that undoes it.

Runs in: every process that ends a container's hold on the host. The minirt parent (rollback of
a failed start, and the normal exit), the supervisor (exit, restart), the sentinel (minirt was
killed), `rm`, `gc`, `start` of a dead container and `network disconnect`. They all call
carry_out(); none of them knows how to undo a step by itself.

runc's rule, "persist before the point of no return" (libcontainer/process_linux.go: the state
is stored before procRun): a step is appended to the record, under the record's lock, before
the change it undoes is made. A process killed at any instant therefore leaves a record that
names everything it may have changed, and whoever finds the owner dead carries the plan out.

    state.json "teardown": [                       appended in the order the changes are made
      {"undo": "cgroup", "version": 1,              kill what is left in it, rmdir each directory
     "dirs": {"memory": "/sys/fs/cgroup/memory/minirt/<id>", ...}}
    {"undo": "lease", "network": "minirt"}       release this container's leases in the network
      {"undo": "veth", "network": "minirt",        delete the host end of the pair
       "ifname": "mr3f2a9c1e0d4f"}
      {"undo": "ports", "network": "minirt",       delete each published element that still
       "firewall": "nftables",                     maps to this container
       "elements": [["ports_any", "tcp . 8080", "10.88.0.2 . 80"], ...]}
    ]

Steps are carried out newest first. Each is idempotent and deletes only what is still its own:
- a lease is released only while it names this container (ipam.release_owner: under the
  network's lock, inode-checked);
- an element is deleted only while its value is ours: the transaction declares it with our
  value first, which the kernel refuses (EEXIST) when the key now maps to someone else, as
  moby checks the old value before deleting a map element;
- a cgroup directory is named after the container id, and only its own directory goes (the
  parent, /minirt, stays: Docker's /docker does too);
- a veth is named after the container id (`mr` + 12 hex, or `mr` + 11 hex + `x` + N for a
  connected network), a name no other container can have.

What is not a host change is not in the plan: the overlay and every other mount live in the
container's own mount namespace; the port reservation sockets and the nft helper die with the
process holding them; the DNS responder counts live leases, so the lease step is its
reference. A new kind of resource adds a step kind here and nowhere else (cgroups did).
"""

import os

from minirt import explain, ids

def network_steps(network: str, ifname: str) -> list[dict]:
    """A network's steps, known before anything is allocated in it: the lease and the host
    veth. The first network's go into the record written before the first host change; a
    connected network's are written by `network connect` and removed by `disconnect`."""
    return [{"undo": "lease", "network": network}, {"undo": "veth", "network": network, "ifname": ifname}]


def cgroup_step(cg) -> dict:
    """The container's cgroup (a driver from minirt.cgroups): first in the plan, so last undone."""
    return {"undo": "cgroup", **cg.to_dict()}


def oom_killed(steps: list[dict]) -> bool:
    """Whether the OOM killer killed a process in the plan's cgroup: read before the plan
    removes it (the kernel's count, not a guess from exit code 137)."""
    from minirt import cgroups

    for step in steps:
        if step["undo"] == "cgroup":
            cg = cgroups.driver(step)
            try:
                return cg is not None and cg.oom_kills() > 0
            except OSError:
                return False
    return False


def ports_step(network: str, firewall: str, elements: list) -> dict:
    return {"undo": "ports", "network": network, "firewall": firewall, "elements": [list(e) for e in elements]}


def host_ifname(cid: str) -> str:
    """mr + short id: 14 bytes, under IFNAMSIZ, and maps back to the container."""
    return "mr" + ids.short(cid)


def plan_of(rec: dict) -> list[dict]:
    """The record's plan. A record written before plans existed (a container started by an
    older minirt) gets the plan its network fields imply."""
    if "teardown" in rec:
        return rec["teardown"]
    net = rec.get("network") or {}
    if (rec.get("config") or {}).get("net") != "bridge" or not net.get("network"):
        return []
    steps = network_steps(net["network"], host_ifname(rec["id"]))
    if net.get("ports") and net.get("address"):
        from minirt.net.firewall import ports as fwports
        from minirt.net.ports import PortMapping

        mappings = [PortMapping.from_dict(p) for p in net["ports"]]
        steps.append(
            ports_step(net["network"], "nftables", fwports.elements(mappings, net["address"], net.get("address6")))
        )
    for e in rec.get("connected") or []:
        steps += network_steps(e["network"], e["host_ifname"])
    return steps


def carry_out(root: str, cid: str, steps: list[dict], netns_gone: bool = False,
              firewall=None) -> tuple[list[dict], list[str]]:  # fmt: skip
    """Undo `steps` newest first; returns (the steps that failed, their messages). Keeps going
    past a failure, so one refused step never leaves the others undone (netavark's
    NetavarkErrorList). netns_gone: the container's init has been reaped, so its network
    namespace is on its way out and the kernel deletes its veths (about 26 ms later, off the
    user's path); the caller that needs them gone at once (rollback, disconnect) says False.
    firewall: the backend `run -p` already holds, with its nft helper (the bindings' import is
    then not paid again on the exit path)."""
    failed, failures = [], []
    for step in reversed(steps):
        try:
            _UNDO[step["undo"]](root, cid, step, netns_gone, firewall)
        except Exception as e:  # noqa: BLE001 - collect and keep going: teardown does all it can
            failed.insert(0, step)
            failures.append(f"{describe(step, cid)}: {e}")
    return failed, failures


def describe(step: dict, cid: str) -> str:
    kind = step["undo"]
    if kind == "lease":
        return f"release the lease of {ids.short(cid)} in network {step['network']}"
    if kind == "veth":
        return f"delete veth {step['ifname']}"
    if kind == "cgroup":
        return f"remove cgroup {ids.short(cid)} ({', '.join(sorted(set(step.get('dirs', {}).values())))})"
    if kind == "ports":
        return f"unpublish {len(step['elements'])} port element(s) of {ids.short(cid)}"
    return f"undo {kind}"


def _undo_lease(root: str, cid: str, step: dict, _netns_gone: bool, _firewall) -> None:
    from minirt.net import ipam, netrecord

    net = netrecord.load(root, step["network"])
    if net is not None and ipam.release_owner(net.dir, cid):  # a removed network took its leases with it
        from minirt import events

        # the lease is the container's membership of the network: its release, by whoever
        # carries the plan out, is Docker's `network disconnect` (exactly once: a second
        # release finds nothing)
        events.network(root, "disconnect", net, cid)


def _undo_veth(_root: str, _cid: str, step: dict, netns_gone: bool, _firewall) -> None:
    from minirt.net import netlink

    ifname = step["ifname"]
    if netns_gone:
        # said whether or not the kernel has done it yet (asynchronously, ~26 ms after the
        # namespace's last process), so --explain prints the same lines every time
        explain.cmd(f"# {ifname}: the kernel deletes it with the container's network namespace")
        return
    if netlink.index_of(ifname) is not None:
        netlink.delete_host_link(ifname)


def _undo_ports(_root: str, _cid: str, step: dict, _netns_gone: bool, firewall) -> None:
    name = step.get("firewall") or "nftables"
    if firewall is None or firewall.name != name:
        from minirt.net.firewall import get_backend

        firewall = get_backend(name)
    firewall.unpublish([tuple(e) for e in step["elements"]])


def _undo_cgroup(_root: str, _cid: str, step: dict, _netns_gone: bool, _firewall) -> None:
    from minirt import cgroups

    cg = cgroups.driver(step)
    if cg is not None:
        cg.remove()


_UNDO = {"cgroup": _undo_cgroup, "lease": _undo_lease, "veth": _undo_veth, "ports": _undo_ports}


# ---------------------------------------------------------------------------------------------
# A container whose owner is gone: carry out its plan, then record the exit (or remove it)


def finalize_dead(store, cid: str, expect_owner: dict | None = None) -> bool:
    """The container's owner died without tearing down (kill -9, OOM): carry out its plan and
    keep the record as "exited" (137 unless an exit was recorded), or remove it (--rm). An
    exited container whose plan still holds failed steps gets them retried the same way.
    Serves `gc`, `rm`, `start` and the sentinel; under the record's lock, so two of them never
    finalize one container twice. With expect_owner (the sentinel), only if that process is
    still the record's owner: a container restarted meanwhile belongs to its new owner.
    Returns False if there was nothing to do (not dead, gone, or owned by another process)."""
    import fcntl

    from minirt.state import atomic_write_json, read_json

    d = store.container_dir(cid)
    try:
        dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(dfd, fcntl.LOCK_EX)
        try:
            rec = read_json(f"{d}/state.json")
        except (FileNotFoundError, ValueError):
            return False
        if expect_owner is not None and _owner_key(rec.get("supervisor") or rec.get("owner")) != _owner_key(
            expect_owner
        ):
            return False
        if not unfinished(rec):
            return False
        steps = plan_of(rec)
        code = rec.get("exit_code")
        if rec.get("status") != "exited":
            rec["oom_killed"] = oom_killed(steps)
            _announce_death(store.root, rec, 137 if code is None else code)
        left, failures = carry_out(store.root, cid, steps)
        if (rec.get("config") or {}).get("rm") and not left:
            store.release_name(rec.get("name", ""), cid)
            store.remove(cid)
            from minirt import events

            events.container(store.root, "destroy", rec)
            return True
        rec.update(status="exited", exit_code=137 if code is None else code, pid=0, teardown=left)
        rec.pop("connected", None)
        atomic_write_json(f"{d}/state.json", rec)
        if failures:
            from minirt.errors import CleanupError

            raise CleanupError(failures)
        return True
    finally:
        os.close(dfd)


def _announce_death(root: str, rec: dict, code: int) -> None:
    """The owner died before it wrote the exit: oom (if the kernel counted one) and die, unless
    the owner got as far as writing die itself before it was killed (the log says so: its
    last start or die of this container is a die), or never wrote start (it was killed while
    creating). Called under the record's lock, once per dead record, so `die` is written once."""
    from minirt import eventlog, events

    if eventlog.last_action(root, rec["id"], ("start", "die")) != "start":
        return
    if rec.get("oom_killed"):
        events.container(root, "oom", rec)
    events.container(root, "die", rec, exitCode=code)


def unfinished(rec: dict) -> bool:
    """Dead (its owner is gone, its plan not carried out), or exited with steps that failed
    and are left for `gc` to retry."""
    from minirt import liveness

    st = liveness.status(rec)
    return st == "dead" or (st == "exited" and bool(rec.get("teardown")))


def _owner_key(o: dict | None) -> tuple:
    return (o or {}).get("pid"), (o or {}).get("start_time")
