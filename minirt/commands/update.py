"""minirt update [--memory ...] [--cpus ...] [--pids-limit ...] CONTAINER...: change the limits of
containers, as `docker update` does.

A running container's cgroup gets the new values at once; every container's record keeps them,
so a stopped one is started with them (Docker updates a stopped container's config only). Only
the files whose value changes are written, plus those of the flags given (runc `update` writes
what it is handed). Each container is done under its record's lock, so two updates of one
container do not interleave, and a failed write is undone before the next container is tried.
Like docker/cli's runUpdate, a failing container does not stop the others; their errors are
reported together, after the references of those that were updated.
"""

import errno
import sys

from minirt.cgroups import flags
from minirt.cliparse import FLAG, Option, parse
from minirt.errors import ConfigError, ConflictError, MinirtError

USAGE = "minirt update [OPTIONS] CONTAINER [CONTAINER...]"
OPTIONS = [*flags.OPTIONS, Option(("--explain",), FLAG, "print each cgroup file write as `echo VALUE > FILE`")]
MEM, MEMSW = "memory.limit_in_bytes", "memory.memsw.limit_in_bytes"


def main(args: list[str]) -> int:
    opts, refs = parse(OPTIONS, args, stop_at_operand=False, prog=USAGE)
    from minirt import explain

    explain.enabled = opts["explain"]
    if all(opts[o.dest] is None for o in flags.OPTIONS):
        raise ConfigError("you must provide one or more flags when using this command")  # docker's words
    if not refs:
        raise ConfigError('"minirt update" requires at least 1 argument (a container)')
    update = flags.resources(opts, update=True)
    from minirt.state import Store

    store = Store()
    errors: list[MinirtError] = []
    for ref in refs:
        try:
            cid = store.resolve(ref)
            store.update(cid, lambda rec: _update(rec, update, ref))
        except MinirtError as e:
            errors.append(e)
            continue
        print(ref)
    if errors:
        sys.stdout.flush()
        if len(errors) > 1:
            raise type(errors[0])("; ".join(str(e) for e in errors))
        raise errors[0]
    return 0


def _update(rec: dict, update, ref: str) -> None:
    """Under the record's lock: validate against the stored limits, write the running
    container's cgroup, keep the merged limits in the record."""
    from minirt import cgroups, liveness
    from minirt.cgroups.limits import Resources

    cfg = rec.setdefault("config", {})
    current = Resources.from_dict(cfg.get("resources"))
    update.validate_update(current)
    new = current.merged(update)
    drv = cgroups.driver(rec.get("cgroup")) if liveness.status(rec) == "running" else None
    if drv is not None and drv.exists():
        _write(drv, changed_writes(current, update, new, drv.version), ref)
    cfg["resources"] = new.to_dict()


def changed_writes(current, update, new, version: int) -> list[tuple]:
    """new's writes for the files the update names or whose value changes, in new's order.
    A write is (controller, file, value) on v1 and (file, value) on v2."""
    if version == 1:
        now, given, after = current.v1_writes(), update.v1_writes(), new.v1_writes()
    else:
        now, given, after = current.v2_writes(), update.v2_writes(), new.v2_writes()
    old = {w[:-1]: w[-1] for w in now}
    named = {w[:-1] for w in given}
    return [w for w in after if w[:-1] in named or old.get(w[:-1]) != w[-1]]


def order_v1_memory(writes: list[tuple], current_limit: int) -> list[tuple]:
    """The kernel refuses memory.limit_in_bytes above the current memory.memsw.limit_in_bytes,
    and memsw below the current memory limit (EINVAL), so when both change, the order depends
    on the direction: swap first when it is unlimited or above the current memory limit, else
    memory first (runc libcontainer/cgroups/fs/memory.go setMemoryAndSwap)."""
    mem = next((w for w in writes if w[1] == MEM), None)
    sw = next((w for w in writes if w[1] == MEMSW), None)
    if mem is None or sw is None:
        return writes
    rest = [w for w in writes if w is not mem and w is not sw]
    new_sw = int(sw[2])
    first = [sw, mem] if new_sw == -1 or current_limit < new_sw else [mem, sw]
    return first + rest


def _write(drv, writes: list[tuple], ref: str) -> None:
    """Write one file at a time; on a refusal, put back the files already written (newest
    first) so the cgroup keeps the limits the record still holds, then say why."""
    if drv.version == 1:
        writes = order_v1_memory(writes, _int(drv.read("memory", MEM)) if any(w[1] == MEM for w in writes) else 0)
    missing = [w[0] for w in writes if drv.version == 1 and w[0] not in drv.dirs]
    if missing:  # before the first write: nothing to undo
        raise ConfigError(f"cannot update container {ref}: cgroup controller {missing[0]} is not mounted on this host")
    done: list[tuple] = []
    for w in writes:
        ctl, name = (w[0], w[1]) if drv.version == 1 else ("", w[0])
        try:
            before = drv.read(ctl, name)
            drv.apply([w])
        except OSError as e:
            for u, old in reversed(done):
                try:
                    drv.apply([u[:-1] + (old,)])
                except OSError:
                    pass  # best effort: the error below is the one to act on
            raise _refusal(drv, ref, name, w[-1], e) from None
        done.append((w, before))


def _refusal(drv, ref: str, name: str, value: str, e: OSError) -> MinirtError:
    if e.errno == errno.EBUSY and name == MEM:
        # v1 refuses a limit below what the cgroup uses (v2 reclaims, then OOM-kills instead);
        # runc's setMemory words it this way
        usage = _read_or(drv, "memory.usage_in_bytes")
        peak = _read_or(drv, "memory.max_usage_in_bytes")
        return ConflictError(f"cannot update container {ref}: unable to set memory limit to {value} "
                             f"(current usage: {usage}, peak usage: {peak})")  # fmt: skip
    if e.errno == errno.ENOENT and name == MEMSW:
        return ConfigError(f"cannot update container {ref}: this kernel does not account swap "
                           "(no memory.memsw.limit_in_bytes; boot with swapaccount=1)")  # fmt: skip
    return ConfigError(f"cannot update container {ref}: {name}: {e.strerror}")


def _read_or(drv, name: str) -> str:
    try:
        return drv.read("memory", name)
    except OSError:
        return "?"


def _int(s: str) -> int:
    try:
        return int(s)
    except ValueError:
        return -1
