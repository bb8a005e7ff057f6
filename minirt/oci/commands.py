"""minirt-oci's commands: create, start, state, kill, delete, ps, pause, resume, update, features
(exec is minirt/oci/execproc.py).

Runs in: the engine's calls, each a short-lived process; no minirt process stays behind a
container (runc's model): between commands the container is its init, its cgroup and the
state directory under --root.
"""

import json
import os
import sys
import time

from minirt.errors import ConfigError, MinirtError
from minirt.oci import fds
from minirt.oci import state as ocistate
from minirt.oci.spec import SPEC_VERSION


def dispatch(cmd: str, root: str, opts: dict, pos: list[str]) -> int:
    if cmd == "features":
        return features()
    if cmd == "exec":
        from minirt.oci import execproc

        if not pos:
            raise MinirtError('"exec" requires a minimum of 1 argument')
        return execproc.main(root, pos[0], pos[1:], opts)
    if not pos:
        raise MinirtError(f'"{cmd}" requires a container id')
    cid = pos[0]
    if cmd == "create":
        if len(pos) != 1:
            raise MinirtError(f'"create" takes exactly 1 argument, got {len(pos)}')
        return create(root, cid, opts)
    if cmd == "kill":
        if len(pos) > 2:
            raise MinirtError('"kill" takes an id and at most one signal')
        return kill(root, cid, pos[1] if len(pos) > 1 else "TERM", bool(opts.get("all")))
    if cmd == "ps":
        return ps(root, cid, opts.get("format") or "table", pos[1:])
    if len(pos) != 1:
        raise MinirtError(f'"{cmd}" takes exactly 1 argument, got {len(pos)}')
    if cmd == "start":
        return start(root, cid)
    if cmd == "state":
        return state(root, cid)
    if cmd == "delete":
        return delete(root, cid, bool(opts.get("force")))
    if cmd in ("pause", "resume"):
        return pause(root, cid, cmd == "pause")
    if cmd == "update":
        return update(root, cid, opts)
    if cmd == "events":
        return events(root, cid, opts)
    raise MinirtError(f"unknown command {cmd}")


def now() -> str:
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int((t % 1) * 1e9):09d}Z"


def public(root: str, rec: dict) -> dict:
    from minirt.oci.spec import state_json

    return state_json(rec["id"], ocistate.status(root, rec), rec.get("pid") or 0, rec["bundle"], rec.get("rootfs", ""),
                      rec.get("created", ""), rec.get("annotations"))  # fmt: skip


# --- create --------------------------------------------------------------------------------------

def create(root: str, cid: str, opts: dict) -> int:
    from minirt.oci import spec

    spec.check_id(cid)
    bundle = os.path.abspath(opts.get("bundle") or os.getcwd())
    try:
        with open(f"{bundle}/config.json") as f:
            config = json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"JSON specification file {bundle}/config.json not found") from None
    except ValueError as e:
        raise ConfigError(f"config.json: not valid JSON ({e})") from None
    sp = spec.load(config, bundle, cid)
    if not os.path.isdir(sp.root):
        raise ConfigError(f"rootfs ({sp.root}) does not exist")
    console = opts.get("console-socket")
    if sp.terminal and not console:
        raise ConfigError("cannot allocate tty if runc will detach without setting console socket")
    if console and not sp.terminal:
        raise ConfigError("cannot use console socket if runc will not detach or allocate tty")
    preserve = fds.preserve_fds(opts)
    if os.geteuid() != 0:
        raise ConfigError("minirt-oci must run as root")
    from minirt.oci import create as creator

    creator.create(root, sp, console, opts.get("pid-file"), bool(opts.get("no-pivot")), preserve)
    return 0


# --- start, state, kill --------------------------------------------------------------------------

def start(root: str, cid: str) -> int:
    """Release the parked init (runc's exec.fifo): open the fifo for reading, which lets the
    init's blocking open for writing return, read its byte, remove the fifo. Then poststart."""
    rec = ocistate.load(root, cid)
    st = ocistate.status(root, rec)
    if st == "stopped":
        raise MinirtError("cannot start a container that has stopped")
    if st in ("running", "paused"):
        raise MinirtError("cannot start an already running container")
    if st != "created":
        raise MinirtError(f"cannot start a container in the {st} state")
    fifo = ocistate.fifo_path(root, cid)
    fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        import select

        got = b""
        while not got:
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                try:
                    got = os.read(fd, 1)
                except BlockingIOError:
                    continue
                if got:
                    break
                time.sleep(0.01)  # EOF: no writer at all, so the init is gone or going
            if not ocistate.init_alive(rec):
                raise MinirtError("cannot start a container that has stopped (its init exited before start)")
    finally:
        os.close(fd)
    os.unlink(fifo)
    rec.update(status="running", started=now())
    ocistate.save(root, rec)
    poststart = (rec.get("hooks") or {}).get("poststart")
    if poststart:
        from minirt.oci import hooks

        hooks.run_all_logged(poststart, public(root, rec), "poststart", cwd=rec["bundle"])
    return 0


def state(root: str, cid: str) -> int:
    rec = ocistate.load(root, cid)
    sys.stdout.write(json.dumps(public(root, rec), indent=2) + "\n")
    return 0


def parse_signal(s: str) -> int:
    """runc's parseSignal: a number, or a name with or without SIG, any case."""
    import signal

    if s.isdigit():
        n = int(s)
        if not 0 < n < signal.NSIG:
            raise MinirtError(f"invalid signal number: {s}")
        return n
    name = s.upper()
    if not name.startswith("SIG"):
        name = "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        raise MinirtError(f"unknown signal {s!r}") from None


def kill(root: str, cid: str, sig_s: str, all_: bool) -> int:
    import signal

    sig = parse_signal(sig_s)
    rec = ocistate.load(root, cid)
    st = ocistate.status(root, rec)
    if all_:
        from minirt.oci import cgroup

        cg = cgroup.of(rec)
        if cg is None:
            raise MinirtError("container has no cgroup")
        if sig == signal.SIGKILL:
            cg.kill_all()
        else:
            for pid in cg.procs():
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
        if st == "paused" and sig == signal.SIGKILL:
            cgroup.freeze(rec, False)  # a frozen task takes its SIGKILL only once thawed
        return 0
    if st not in ("created", "running", "paused"):
        raise MinirtError("container not running")
    pidfd = os.pidfd_open(rec["pid"])
    try:
        if not ocistate.init_alive(rec):  # checked with the pidfd held: no pid reuse in between
            raise MinirtError("container not running")
        signal.pidfd_send_signal(pidfd, sig)
    finally:
        os.close(pidfd)
    if st == "paused" and sig == signal.SIGKILL:
        from minirt.oci import cgroup

        cgroup.freeze(rec, False)
    return 0


# --- delete --------------------------------------------------------------------------------------

def delete(root: str, cid: str, force: bool) -> int:
    """Stopped (or created, as runc): the cgroup, poststop hooks, the state directory. Running
    or paused: refused without --force; with it SIGKILL to every process first. A directory
    whose state.json is gone (a create killed half-way) is removed too."""
    import shutil

    cdir = ocistate.container_dir(root, cid)
    try:
        rec = ocistate.load(root, cid)
    except ocistate.NotExist:
        # runc: a directory without state.json (an aborted create) is removed; with --force a
        # container that does not exist at all is no error either
        if os.path.isdir(cdir):
            shutil.rmtree(cdir, ignore_errors=True)
            return 0
        if force:
            return 0
        raise
    st = ocistate.status(root, rec)
    if st in ("running", "paused", "creating") and not force:
        raise MinirtError(f"cannot delete container {cid} that is not stopped: {st}")
    destroy(root, rec, st)
    poststop = (rec.get("hooks") or {}).get("poststop")
    if poststop:
        from minirt.oci import hooks

        hooks.run_all_logged(poststop, dict(public(root, rec), status="stopped", pid=0), "poststop",
                             cwd=rec["bundle"])  # fmt: skip
    shutil.rmtree(cdir, ignore_errors=True)
    return 0


def destroy(root: str, rec: dict, st: str) -> None:
    """Kill the init and everything in the cgroup, wait for the init to be gone (its parent,
    the engine's subreaper, reaps it; a zombie counts as gone), remove the cgroup."""
    import signal

    from minirt.oci import cgroup

    cg = cgroup.of(rec)
    if ocistate.init_alive(rec):
        try:
            pidfd = os.pidfd_open(rec["pid"])
        except ProcessLookupError:
            pidfd = -1
        if pidfd >= 0:
            try:
                if ocistate.init_alive(rec):
                    signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            finally:
                os.close(pidfd)
    if cg is not None:
        if cg.procs():
            cg.kill_all()
        if st == "paused":
            try:
                cgroup.freeze(rec, False)
            except (OSError, MinirtError):
                pass
    deadline = time.monotonic() + 10
    while ocistate.init_alive(rec) and time.monotonic() < deadline:
        time.sleep(0.005)
    if cg is not None:
        cg.remove()


# --- ps, pause, update, features -----------------------------------------------------------------

def ps(root: str, cid: str, fmt: str, ps_args: list[str]) -> int:
    """The processes in the container's cgroup: --format json is a JSON array of host pids
    (containerd's shim reads that); table is `ps -ef` (or the given ps arguments) cut to them,
    as runc does."""
    from minirt.oci import cgroup

    rec = ocistate.load(root, cid)
    cg = cgroup.of(rec)
    pids = cg.procs() if cg is not None else []
    if fmt == "json":
        sys.stdout.write(json.dumps(pids) + "\n")
        return 0
    if fmt != "table":
        raise MinirtError(f"invalid format option: {fmt}")
    import subprocess

    out = subprocess.run(["ps", *(ps_args or ["-ef"])], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise MinirtError(f"ps: {out.stderr.strip() or 'exit status ' + str(out.returncode)}")
    lines = out.stdout.splitlines()
    if not lines:
        return 0
    header = lines[0].split()
    if "PID" not in header:
        raise MinirtError("couldn't find PID field in ps output")
    col = header.index("PID")
    sys.stdout.write(lines[0] + "\n")
    wanted = set(pids)
    for line in lines[1:]:
        fields = line.split()
        if len(fields) > col and fields[col].isdigit() and int(fields[col]) in wanted:
            sys.stdout.write(line + "\n")
    return 0


def pause(root: str, cid: str, on: bool) -> int:
    from minirt.oci import cgroup

    rec = ocistate.load(root, cid)
    st = ocistate.status(root, rec)
    if on and st not in ("running", "created"):
        raise MinirtError("container not running")
    if not on and st != "paused":
        raise MinirtError("container not paused")
    cgroup.freeze(rec, on)
    rec["status"] = "paused" if on else "running"
    ocistate.save(root, rec)
    return 0


def update(root: str, cid: str, opts: dict) -> int:
    """--resources FILE|- : an OCI LinuxResources object, written like create's (spec.resources)."""
    from minirt.oci import cgroup, spec

    path = opts.get("resources")
    if not path:
        raise MinirtError("update: only --resources FILE|- is supported (an OCI LinuxResources JSON object)")
    rec = ocistate.load(root, cid)
    if ocistate.status(root, rec) == "stopped":
        raise MinirtError("container not running")
    text = sys.stdin.read() if path == "-" else open(path).read()
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise ConfigError(f"update: resources are not valid JSON ({e})") from None
    res = spec.resources(obj, "resources")
    cg = cgroup.of(rec)
    if cg is None:
        raise MinirtError("container has no cgroup")
    cgroup.apply_resources(cg, res)
    if obj.get("devices"):
        cg.apply_devices(spec.device_rules(obj["devices"], "resources.devices"))
    return 0


def events(root: str, cid: str, opts: dict) -> int:
    """`events --stats` (containerd's shim asks it for metrics): one runc-shaped stats event
    from the cgroup: CPU time, memory usage and limit, pids. runc's streaming events (OOM
    notifications, periodic stats) are refused rather than faked."""
    from minirt.oci import cgroup

    if not opts.get("stats"):
        raise MinirtError("events: only --stats is supported (no event stream)")
    rec = ocistate.load(root, cid)
    if ocistate.status(root, rec) == "stopped":
        raise MinirtError("container not running")
    cg = cgroup.of(rec)
    if cg is None:
        raise MinirtError("container has no cgroup")
    s = cg.stats()
    data = {
        "cpu": {"usage": {"total": s["cpu_ns"]}, "throttling": {}},
        "memory": {"usage": {"usage": s["mem_usage"], "limit": s["mem_limit"]}},
        "pids": {"current": s["pids"]},
        "blkio": {"ioServiceBytesRecursive": [{"op": "Read", "value": s["blk_read"]},
                                              {"op": "Write", "value": s["blk_write"]}]},  # fmt: skip
    }
    sys.stdout.write(json.dumps({"type": "stats", "id": cid, "data": data}) + "\n")
    return 0


def features() -> int:
    """runtime-spec features.md: what this runtime implements, for the engines that ask."""
    from minirt import caps
    from minirt.oci import spec

    doc = {
        "ociVersionMin": spec.OCI_VERSION_MIN,
        "ociVersionMax": SPEC_VERSION,
        "hooks": list(spec.HOOK_NAMES),
        "mountOptions": sorted(set(spec.MOUNT_FLAGS) | set(spec.PROPAGATION) | {"tmpcopyup"}),
        "linux": {
            "namespaces": sorted(spec.NAMESPACES),
            "capabilities": ["CAP_" + c.upper() for c in caps.CAPS],
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False, "rdma": False},
            "seccomp": {
                "enabled": True,
                "actions": list(spec.SECCOMP_ACTIONS),
                "operators": list(spec.SECCOMP_OPERATORS),
                "archs": list(spec.SECCOMP_ARCHS),
                "knownFlags": list(spec.SECCOMP_FLAGS),
                "supportedFlags": list(spec.SECCOMP_FLAGS),
            },
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": False}},
        },
        "annotations": {"io.github.minirt.oci.version": _version()},
    }
    sys.stdout.write(json.dumps(doc, indent=4) + "\n")
    return 0


def _version() -> str:
    from minirt import __version__

    return __version__

