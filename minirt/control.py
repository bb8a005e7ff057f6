"""Control of existing containers: signals, stop, removal, garbage collection.

Runs in: any minirt command, host namespaces. The kernel is the source of truth: a record
says "running" but its process is checked by pid + start time (runc: a pid alone can be
reused), and a container whose owner (the foreground minirt or the supervisor) is gone while
its record says created/running was left by a crash: `gc` (and `rm`) clean it from the record
with the same idempotent steps teardown uses.
"""

import os
import time

from minirt import explain, procfs
from minirt.liveness import init_alive, owner_alive, status
from minirt.errors import ConflictError
from minirt.state import Store


def send_signal(rec: dict, sig: int) -> None:
    """Signal the container's init, safely: by pidfd after checking the start time."""
    import signal as _sig

    gone = ConflictError(f"container {rec['id'][:12]} is not running")
    if not init_alive(rec):
        raise gone
    try:
        fd = os.pidfd_open(rec["pid"])
    except ProcessLookupError:
        raise gone from None
    try:
        # checked after opening: the pidfd pins the process we checked, not a reused pid
        if not procfs.is_alive(rec["pid"], rec.get("start_time")):
            raise gone
        _sig.pidfd_send_signal(fd, sig)
    except ProcessLookupError:
        raise gone from None
    finally:
        os.close(fd)


def wait_exited(store: Store, cid: str, timeout: float) -> bool:
    """Until the init is gone and its owner has recorded the exit (or is gone itself)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            rec = store.load(cid)
        except FileNotFoundError:
            return True
        if not init_alive(rec) and (rec.get("status") not in ("running", "created") or not owner_alive(rec)):
            return True
        time.sleep(0.02)
    return False


def stop(store: Store, cid: str, timeout: float, sig: int) -> None:
    """Docker's stop: the stop signal, then SIGKILL after `timeout` seconds."""
    rec = store.load(cid)
    open(store.container_dir(cid) + "/stop-requested", "w").close()  # no restart after a stop
    if not init_alive(rec):
        return
    try:
        send_signal(rec, sig)
    except ConflictError:
        return
    if not wait_exited(store, cid, timeout):
        try:
            send_signal(store.load(cid), 9)
        except (ConflictError, FileNotFoundError):
            pass
        wait_exited(store, cid, 30)


def cleanup_dead(store: Store, cid: str, rec: dict) -> None:
    """Undo what a crashed owner left: the network side (lease, veth) and the record's state."""
    cfg = rec.get("config", {})
    if cfg.get("net") == "bridge":
        from minirt.net import ipam, network
        from minirt.net.bridge import host_ifname

        net = network.load(store.root, cfg.get("network") or network.DEFAULT_NETWORK)
        ports = (rec.get("network") or {}).get("ports") or []
        address = (rec.get("network") or {}).get("address")
        address6 = (rec.get("network") or {}).get("address6")  # dual-stack networks
        if ports and address:
            from minirt.net.firewall import ports as fwports
            from minirt.net.ports import PortMapping

            try:
                fwports.unpublish([PortMapping.from_dict(p) for p in ports], address, address6)
            except Exception:  # noqa: BLE001 - another container may own the key now; not ours to delete
                pass
        if net is not None:
            ipam.release_owner(net.dir, cid)
        if rec.get("connected"):  # networks added by `minirt network connect`
            from minirt.net import connect

            connect.release_connected(store.root, cid, rec)
        ifname = host_ifname(cid)
        try:
            import _socket

            _socket.if_nametoindex(ifname)
        except OSError:
            pass
        else:
            from minirt.net.netlink import Rtnl

            explain.cmd(f"ip link del {ifname}")
            Rtnl.host().delete_link(ifname)


def remove(store: Store, cid: str, force: bool) -> None:
    rec = store.load(cid)
    if init_alive(rec):
        if not force:
            raise ConflictError(
                f"cannot remove container {cid[:12]}: it is running (stop it first, or use rm -f)"
            )
        stop(store, cid, 0, 9)
        rec = store.load(cid) if os.path.exists(store.container_dir(cid) + "/state.json") else rec
    elif owner_alive(rec) and rec.get("status") in ("created", "running"):
        wait_exited(store, cid, 10)
    if not os.path.isdir(store.container_dir(cid)):
        return
    cleanup_dead(store, cid, rec)
    store.release_name(rec.get("name", ""), cid)
    store.remove(cid)


def gc(store: Store) -> list[str]:
    """Clean every container a crash left behind; healthy ones are not touched."""
    cleaned = []
    for cid in store.ids():
        if not os.path.isdir(store.container_dir(cid)):
            continue  # removed meanwhile
        try:
            rec = store.load(cid)
        except (FileNotFoundError, ValueError):
            rec = None
        if rec is None:
            # no readable record: a run killed before it wrote one; the owner file says whose
            pid, started = store.dir_owner(cid)
            if not procfs.is_alive(pid, started):
                store.remove(cid)
                cleaned.append(cid)
            continue
        if status(rec) != "dead":
            continue
        cleanup_dead(store, cid, rec)
        if rec.get("config", {}).get("rm"):
            store.release_name(rec.get("name", ""), cid)
            store.remove(cid)
        else:
            rec.update(status="exited", exit_code=rec.get("exit_code") if rec.get("exit_code") is not None else 137, pid=0)
            store.save(rec)
        cleaned.append(cid)
    # names whose container is gone
    try:
        names = os.listdir(f"{store.root}/names")
    except FileNotFoundError:
        names = []
    for name in names:
        owner = store.name_owner(name)
        if owner and not os.path.isdir(store.container_dir(owner)):
            store.release_name(name, owner)
    return cleaned

