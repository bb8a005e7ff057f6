"""minirt-oci's state: one directory per container under --root, its record written atomically.

    <root>/<id>/state.json   the record: the runtime-spec state's fields, the init's pid + start
                             time, the cgroup, what exec and delete need (process, namespaces,
                             poststart/poststop hooks)
    <root>/<id>/exec.fifo    exists from create until start: the init blocks opening it for
                             writing (runc's exec.fifo); its presence with a live init = "created"
    <root>/<id>/seccomp.bpf  the compiled filter, for exec (the container's own)

Runs in: every minirt-oci command. The status is never trusted from the file alone: it is
computed from the init's liveness (pid + start time, as runc's hasInit; a zombie is stopped),
the freezer state and the fifo, as runc's refreshState does.
"""

import os

from minirt import procfs
from minirt.errors import MinirtError
from minirt.state import atomic_write_json, read_json

DEFAULT_ROOT = "/run/minirt-oci"


class NotExist(MinirtError):
    """podman and containerd match on this text ("does not exist")."""

    def __init__(self, cid: str):
        super().__init__("container does not exist")
        self.cid = cid


def container_dir(root: str, cid: str) -> str:
    return f"{root}/{cid}"


def fifo_path(root: str, cid: str) -> str:
    return f"{root}/{cid}/exec.fifo"


def load(root: str, cid: str) -> dict:
    try:
        return read_json(f"{root}/{cid}/state.json")
    except (FileNotFoundError, NotADirectoryError):
        raise NotExist(cid) from None
    except ValueError:
        # a record cut short cannot happen (temp + rename); a foreign file can
        raise MinirtError(f"container {cid}: state.json is damaged") from None


def save(root: str, rec: dict) -> None:
    atomic_write_json(f"{root}/{rec['id']}/state.json", rec)


def init_alive(rec: dict) -> bool:
    return bool(rec.get("pid")) and procfs.is_alive(rec["pid"], rec.get("start_time"))


def frozen(rec: dict) -> bool:
    from minirt.oci import cgroup

    return cgroup.frozen(rec)


def status(root: str, rec: dict) -> str:
    """creating | created | running | paused | stopped, from the kernel (runc refreshState)."""
    if rec.get("status") == "creating":
        creator = rec.get("creator") or {}
        if procfs.is_alive(creator.get("pid", 0), creator.get("start_time")):
            return "creating"
        return "stopped"  # its create died half-way: delete cleans it
    if not init_alive(rec):
        return "stopped"
    if frozen(rec):
        return "paused"
    if os.path.exists(fifo_path(root, rec["id"])):
        return "created"
    return "running"
