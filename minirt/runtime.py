"""Container lifecycle orchestration: the one module that knows the order of the steps.

Runs in: the minirt parent, host namespaces.

    validate -> reserve ports -> directory (owner file) -> spawn (waits at NET_READY)
    -> record ("created", owner = us, teardown plan) -> network (each change written to the
    plan first) -> release (NET_READY) -> EXEC + EOF => "running" -> wait -> teardown plan

`run` is create + start: create() leaves the container process parked at the NET_READY
barrier with every undo registered; start() releases it. This is the seam for the OCI-style
create/start/state/kill/delete verbs. `run --dry-run` is dry_run(): create()'s host-changing
steps in create()'s order with explain.dry on (each primitive prints its line, makes nothing),
and nothing forked.

Two kinds of undo, kept apart on purpose:
- host changes (leases, veths, published ports) are the record's teardown plan, persisted
  before each change and carried out by teardown.py, whoever ends the container: this
  process, the sentinel (foreground runs), `run -d` (a supervisor killed during setup), `rm`,
  `start` or `gc` (runc: persist before the point of no return);
- what only this process holds (the child, sockets, fds, the reserved ports, the nft helper,
  the sentinel's pipe) is an in-memory undo list (rollback.py), which dies with the process
  and needs nobody after it. Its entry "carry out the teardown plan" connects the two.
"""

import os
import time

from minirt import cgroups, events, explain, faults, ids, procfs, seccomp, sentinel, teardown, timing
from minirt.cgroups import layout
from minirt.errors import CleanupError
from minirt.process import signals
from minirt.process.spawn import Child, spawn
from minirt.process.sync import CGROUP, EXEC, NET_READY, NS_READY
from minirt.rollback import Rollback, run_undo
from minirt.state import Store


class Container:
    """A container being created or run by this process: its record, child and undo list."""

    def __init__(self, cfg, store: Store, record: dict | None = None):
        self.cfg = cfg
        self.store = store
        self.child = Child()
        self.undo: list = []
        self.net: dict = {}  # the NET_READY payload: address, gateway, mac, resolv.conf (bridge)
        self.restarting = record is not None
        self.firewall = None  # `run -p` on a bridge: the backend holding the nft helper
        self.ports_held: list = []  # the sockets holding its published host ports while it runs
        self.announced = False  # its `create` event is written: removing it is a `destroy`
        owner = {"pid": os.getpid(), "start_time": procfs.start_time(os.getpid())}
        # The teardown plan (teardown.py) starts with what the network steps will change; it is
        # in the record written before the first host change, so it costs no extra write.
        self.cgroup = None  # plan_cgroup(), once the init is forked
        steps = teardown.network_steps(cfg.network, teardown.host_ifname(cfg.id)) if cfg.net == "bridge" else []
        if record is not None:  # start / restart: same id, name, writable layer
            left = [s for s in record.get("teardown") or [] if s not in steps]  # a failed step is retried
            self.record = dict(record, status="created", owner=owner, pid=0, start_time=None, exit_code=None,
                               teardown=left + steps, oom_killed=False)  # fmt: skip
            self.record.pop("supervisor", None)  # the last run's: the new one is set once it owns it
            return
        self.record = {
            "id": cfg.id,
            "name": cfg.name,
            "status": "created",
            "created": now(),
            "config": cfg.to_dict(),
            "owner": owner,
            "pid": 0,
            "start_time": None,
            "exit_code": None,
            "restart_count": 0,
            "teardown": steps,
        }

    def plan_cgroup(self) -> None:
        """Every container gets a cgroup of its own (accounting, limits, and `stop` reaching
        every process). Its paths follow from the id and the parent, so its step goes into the
        first record too, first in the plan (undone last). Worked out while the forked init
        imports: reading /proc/self/{cgroup,mountinfo} is then off the critical path."""
        self.cgroup = cgroups.for_container(self.cfg.id, self.cfg.cgroup_parent or layout.configured_parent())
        step = teardown.cgroup_step(self.cgroup)
        plan = self.record["teardown"]
        if step not in plan:
            plan.insert(0, step)
        self.record["cgroup"] = self.cgroup.to_dict()

    def add_step(self, step: dict) -> None:
        """Persist one more teardown step, under the record's lock, before its change is made."""
        self.store.update(self.cfg.id, lambda r: r.setdefault("teardown", []).append(step))
        self.record["teardown"].append(step)

    def carry_out_plan(self) -> None:
        """Undo every host change of this run (rollback, exit). The plan on disk is the one to
        follow: `network connect` adds its steps there while the container runs."""
        try:
            steps = teardown.plan_of(self.store.load(self.cfg.id))
        except (FileNotFoundError, ValueError):
            steps = self.record.get("teardown", [])
        left, failures = teardown.carry_out(self.store.root, self.cfg.id, steps, self.child.reaped, self.firewall)
        self.record["teardown"] = left
        self.record.pop("connected", None)  # connections last one run; their veths went with the netns
        if failures:
            raise CleanupError(failures)


def resumed(cfg, store: Store, record: dict, port_fds: list[int]) -> Container:
    """The container a detached supervisor gets back in its idle form (process/idle.py), after
    execve() dropped the setup's objects: its init has exited and been reaped, and what finish()
    needs is rebuilt from the record and the fds handed over (the published ports' sockets)."""
    c = Container.__new__(Container)
    c.cfg, c.store, c.record = cfg, store, record
    c.child = Child()
    c.child.pid, c.child.reaped = record.get("pid") or 0, True
    c.net, c.restarting, c.firewall, c.announced = record.get("network") or {}, True, None, True
    c.ports_held = []
    c.cgroup = cgroups.driver(record.get("cgroup"))
    # newest first when run: the plan (unpublish), then the sockets (runtime.create's order)
    c.undo = [("# release the reserved host ports", lambda: [os.close(fd) for fd in port_fds]),
              (f"# carry out the teardown plan of {ids.short(cfg.id)}", c.carry_out_plan)]  # fmt: skip
    return c


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _dual_stack(cfg, root: str) -> bool:
    """The container's network has IPv6 (its published ports are held on :: too); only
    user-defined networks can (the default network is IPv4-only)."""
    if cfg.net != "bridge" or not cfg.network:
        return False
    from minirt.net import network

    net = network.load(root, cfg.network)
    return bool(net and net.subnet6)


def create(cfg, store: Store, record: dict | None = None) -> Container:
    """Everything up to the barrier: on any failure nothing is left behind (a restart keeps
    the record and the writable layer it came with)."""
    c = Container(cfg, store, record)
    # The seccomp program first: a bad profile is refused before anything exists, and on a warm
    # cache this is three small reads and a hash (minirt/seccomp/__init__.py).
    prog = seccomp.program(seccomp.effective(cfg.seccomp, cfg.privileged), cfg.caps, store.root)
    timing.mark("seccomp")
    c.record.pop("seccomp_program", None)
    if prog is not None:
        c.record["seccomp_program"] = prog.key  # exec applies the same filter
    with Rollback() as rb:
        if cfg.ports:
            # before anything is set up: a taken port is refused with nothing to undo
            from minirt.net import ports

            held = c.ports_held = ports.reserve(cfg.ports, ipv6=_dual_stack(cfg, store.root))
            release = ("# release the reserved host ports", lambda: [s.close() for s in held])
            rb.add(*release)
            c.undo.append(release)
            c.record["config"] = cfg.to_dict()  # ephemeral host ports are now known
        if c.restarting:
            cdir = store.container_dir(cfg.id)
        else:
            _undo_record(rb, c)
            cdir = store.make_dirs(cfg.id, c.record["owner"])
        with Rollback() as undo:
            undo.add(f"# kill -KILL the init of {ids.short(cfg.id)}", c.child.kill)
            timing.mark("fork")
            spawn(c.child, cfg, cdir, prog.bpf if prog else None)
            timing.mark("spawned")
            c.plan_cgroup()
            timing.mark("planned")
            # The record is written while the child imports and unshares (2 cores: this is
            # off the critical path). It precedes the first host change: the child touches
            # nothing outside its own namespaces before NET_READY, and the parent changes the
            # host only after NS_READY (runc: persist before the point of no return).
            if c.restarting:
                store.save(c.record)
            else:
                store.register(c.record)
                events.container(store.root, "create", c.record)
                c.announced = True
            timing.mark("recorded")
            faults.point("after-record")
            # Registered first, so they run last: by then rollback or teardown has done
            # everything. From here on every host change (the cgroup, then the network) is a
            # step of the plan, and a killed minirt leaves it to the sentinel.
            if not cfg.detach:
                # a detached container has no sentinel: the supervisor owns it, `run -d` finalizes
                # it if the supervisor dies during setup, and after that a killed supervisor
                # leaves its plan to the next `gc`, `rm` or `start` (docs/architecture.md)
                w = sentinel.start(store.root, cfg.id, c.record["owner"])
                undo.add("# dismiss the sentinel", sentinel.dismiss, w)
            undo.add(f"# carry out the teardown plan of {ids.short(cfg.id)}", c.carry_out_plan)
            timing.mark("sentinel")
            if cfg.ports and cfg.net == "bridge":
                _start_nft_helper(c, rb)
            _join_cgroup(c)
            timing.mark("cgroup")
            faults.point("after-cgroup")
            c.child.channel.expect(NS_READY)
            timing.mark("ns-ready")
            faults.point("after-spawn")
            if cfg.net == "bridge":
                from minirt.net import bridge

                c.net = bridge.attach(c, undo, store.root)
                faults.point("after-network")
            c.record["network"] = c.net
            c.undo = c.undo + undo.release()
        rb.release()
    return c


def _start_nft_helper(c: Container, rb: Rollback) -> None:
    """The nftables bindings' import (~10 ms of CPU) runs in a helper while the cgroup and
    the network are built, and the helper publishes the ports (net/firewall/nfthelper.py).
    Forked when the init has about done its own imports (after the record and the sentinel):
    forked before the init, the three of them (this process, the init, the helper) shared the
    2 cores during the imports and each went slower; forked after NS_READY, the helper was not
    ready when the publish was (30 interleaved runs, bench/ab.py: 3% slower). Stopped last,
    after the plan's unpublish (c.undo runs newest first)."""
    from minirt.net.firewall import get_backend

    c.firewall = get_backend("nftables")
    c.firewall.start_helper()
    stop = ("# stop the nft helper", c.firewall.stop_helper)
    rb.add(*stop)
    c.undo.append(stop)


def _join_cgroup(c: Container) -> None:
    """Create the container's cgroup, write its limits and move the init into it, then tell the
    init (CGROUP): it waits for this before building its filesystem, so the command starts
    limited and a private cgroup namespace is rooted at its own cgroup. Undone by the plan's
    cgroup step, in the record already."""
    cg = c.cgroup
    cg.create()
    if c.cfg.resources:  # no flags, no files to write (and limits.py not imported)
        from minirt.cgroups.limits import Resources

        res = Resources.from_dict(c.cfg.resources)
        cg.apply(res.v1_writes() if cg.version == 1 else res.v2_writes())
    from minirt.cgroups import devices

    # Docker's device rules, on every container (its default is deny-all plus a short list)
    cg.apply_devices(devices.rules(c.cfg.privileged, c.cfg.devices))
    timing.mark("cgroup-made")
    cg.place(c.child.pid)
    cgroups.warm_up_done()
    if c.cfg.oom_score_adj is not None:
        from minirt.cgroups import fsutil

        fsutil.write(f"/proc/{c.child.pid}/oom_score_adj", str(c.cfg.oom_score_adj))
    if c.child.channel is not None:  # None: a dry run has no init to tell
        c.child.channel.send(CGROUP, **cg.to_dict())


def dry_run(cfg, store: Store) -> int:
    """`run --dry-run` (explain.dry is on): create()'s host changes in create()'s order, each
    printed by the primitive that would make it and none made. Nothing is forked: the init's
    pid is the placeholder explain.PID. What create() checks before its first change is checked
    here too (the seccomp profile, free host ports, the name), so a dry run that passes is a
    plan the real run can carry out on this host as it is now; the address and the subnet
    are the ones the IPAM would hand out now (peeked, not leased)."""
    c = Container(cfg, store)
    seccomp.program(seccomp.effective(cfg.seccomp, cfg.privileged), cfg.caps, store.root)
    held = []
    if cfg.ports:
        from minirt.net import ports

        # bound and closed again at once: a taken port is refused as the real run refuses it (an
        # ephemeral host port shown is the kernel's pick now; the real run's may differ)
        held = ports.reserve(cfg.ports, ipv6=_dual_stack(cfg, store.root))
        c.record["config"] = cfg.to_dict()
    try:
        store.register(c.record)  # the name is checked; nothing is written
        c.child.pid = explain.PID
        c.plan_cgroup()
        _join_cgroup(c)
        if cfg.net == "bridge":
            from minirt.net import bridge

            with Rollback() as undo:  # sockets only: a dry run rolls back nothing on the host
                bridge.attach(c, undo, store.root)
    finally:
        for s in held:
            s.close()
    return 0


def start(c: Container) -> None:
    """Release the barrier and wait until execve has happened (or failed with 126/127)."""
    with Rollback() as rb:
        if not c.restarting:
            _undo_record(rb, c)
        for what, fn in c.undo:
            rb.add(what, fn)
        ch = c.child.channel
        ch.send(NET_READY, **c.net)
        ch.expect(EXEC)
        ch.expect_exec_done()
        timing.mark("exec-done")
        ch.close()
        faults.point("after-exec")
        c.record.update(status="running", pid=c.child.pid, start_time=procfs.start_time(c.child.pid), started_at=now())
        c.store.save(c.record)
        events.container(c.store.root, "start", c.record)
        rb.release()
    if c.cfg.detach and c.firewall is not None:
        # a detached container may run for days: no idle helper beside it (its unpublish at
        # `rm`/`stop` opens its own nft context, off anyone's start-up path)
        c.firewall.stop_helper()


def wait_and_teardown(c: Container) -> int:
    """Wait for the exit, undo what setup did, then keep the record as "exited" or remove it (--rm)."""
    code = signals.wait_forwarding(c.child)
    timing.mark("exited")
    finish(c, code, remove=c.cfg.rm)
    timing.mark("torn-down")
    return code


def finish(c: Container, code: int, remove: bool) -> None:
    """After the container's init has exited and been reaped: undo the setup, then record the
    exit or remove the container."""
    # read before the plan removes the cgroup: OOMKilled comes from the kernel's count of OOM
    # kills in it, not from the exit code (Docker: containerd's OOM event)
    c.record["oom_killed"] = c.cgroup is not None and c.cgroup.oom_kills() > 0
    # Docker's order: oom, die, then the network's disconnect (the plan's lease step), destroy
    if c.record["oom_killed"]:
        events.container(c.store.root, "oom", c.record)
    events.container(c.store.root, "die", c.record, exitCode=code)
    _follow_stop_request(c)
    failures = run_undo(c.undo)
    c.undo = []
    if remove and not c.record.get("teardown"):
        _remove_record(c)
    else:
        c.record.update(status="exited", exit_code=code, pid=0, finished_at=now())
        c.store.save(c.record)
    if failures:
        raise CleanupError(failures)


def _follow_stop_request(c: Container) -> None:
    """`stop --explain` asked to see this teardown: print its lines to the stop's memfd too
    (explain.follow_request). One failed open() when nobody asked."""
    try:
        with open(c.store.container_dir(c.cfg.id) + "/stop-requested") as f:
            request = f.read()
    except OSError:
        return
    if request:
        explain.follow_request(request)


def run(cfg, store: Store) -> int:
    c = create(cfg, store)
    start(c)
    return wait_and_teardown(c)


def _undo_record(rb: Rollback, c: Container) -> None:
    rb.add(f"# rm -rf {c.store.container_dir(c.cfg.id)}", _remove_record, c)


def _remove_record(c: Container) -> None:
    c.store.release_name(c.cfg.name, c.cfg.id)
    c.store.remove(c.cfg.id)
    if c.announced or c.restarting:
        events.container(c.store.root, "destroy", c.record)
