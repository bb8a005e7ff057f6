"""Container state under MINIRT_ROOT (default /run/minirt, a tmpfs: runtime state dies with a reboot).

    $MINIRT_ROOT/
      lock                          flock: the name -> id registry
      containers/<id>/state.json    one record per container, only written by atomic_write_json
      containers/<id>/upper, work   overlay layers: the container's writable layer
      containers/<id>/merged        mount point of the overlay (mounted only inside the container's
                                    own mount namespace, so it vanishes with it)

Readers see the old file or the new one, never half of one (runc saveState: temp + rename).
"""

import fcntl
import os

from minirt.errors import ConflictError

DEFAULT_ROOT = "/run/minirt"


def root_dir() -> str:
    return os.environ.get("MINIRT_ROOT") or DEFAULT_ROOT


def atomic_write_json(path: str, obj: object) -> None:
    import json

    tmp = f"{os.path.dirname(path)}/.{os.path.basename(path)}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    dfd = os.open(os.path.dirname(path), os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def read_json(path: str) -> dict:
    import json

    with open(path) as f:
        return json.load(f)


class Store:
    def __init__(self, root: str | None = None):
        self.root = root or root_dir()
        self.containers = f"{self.root}/containers"

    def container_dir(self, cid: str) -> str:
        return f"{self.containers}/{cid}"

    def lock(self) -> int:
        """Exclusive flock on the registry; released when the fd is closed."""
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        fd = os.open(f"{self.root}/lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    def names(self) -> dict[str, str]:
        out = {}
        try:
            ids = os.listdir(self.containers)
        except FileNotFoundError:
            return out
        for cid in ids:
            try:
                out[read_json(f"{self.containers}/{cid}/state.json")["name"]] = cid
            except (OSError, ValueError, KeyError):
                continue
        return out

    def create(self, record: dict) -> str:
        """Reserve the name and write the first record, under the registry lock."""
        fd = self.lock()
        try:
            taken = self.names().get(record["name"])
            if taken:
                raise ConflictError(
                    f"name {record['name']!r}: already in use by container {taken[:12]}"
                    " (remove it or choose another name)"
                )
            d = self.container_dir(record["id"])
            os.makedirs(d, mode=0o700)
            for sub in ("upper", "work", "merged"):
                os.mkdir(f"{d}/{sub}", 0o755)
            atomic_write_json(f"{d}/state.json", record)
            return d
        finally:
            os.close(fd)

    def save(self, record: dict) -> None:
        atomic_write_json(f"{self.container_dir(record['id'])}/state.json", record)

    def remove(self, cid: str) -> None:
        """Idempotent: a missing directory is already removed."""
        import shutil  # lazy: shutil pulls in fnmatch and re

        try:
            shutil.rmtree(self.container_dir(cid))
        except FileNotFoundError:
            pass
