"""Container state under MINIRT_ROOT (default /run/minirt, a tmpfs: runtime state dies with a reboot).

    $MINIRT_ROOT/
      names/<name>                  the id owning <name>; created O_EXCL, so a name has one owner
      containers/<id>/owner         "<pid> <start time>" of the creating process, written first
                                    (gc attributes a directory without a record by it)
      containers/<id>/state.json    one record per container, only written by atomic_write_json
      containers/<id>/upper, work   overlay layers: the container's writable layer
      containers/<id>/merged        mount point of the overlay (mounted only inside the container's
                                    own mount namespace, so it vanishes with it)
      containers/<id>/container.log detached containers' output (process/supervisor.py)
      containers/<id>/stop-requested  `minirt stop` was asked: no restart (control.stop)
      networks/                     bridge networks (net/network.py, net/ipam.py)

Readers see the old file or the new one, never half of one (runc saveState: temp + rename).
Records are not fsynced, as runc's state.json and our IPAM's leases are not: they live on /run,
which a reboot empties (or, where /run is a disk as on these VMs, leaves to `gc`), and the
rename alone keeps them whole for every reader and across a kill -9. That saves ~0.7 ms per
record write (two fsyncs) on the start-up path. The image store (/var/lib/minirt, kept
across reboots) asks for durable writes.

A dry run (explain.dry, `--dry-run`) writes and removes nothing here: atomic_write_json, rmtree
and every Store change return at once (a name is still checked for a conflict).
"""

import fcntl
import os

from minirt import explain, jsonenc, procfs
from minirt.errors import ConflictError

DEFAULT_ROOT = "/run/minirt"


def root_dir() -> str:
    return os.environ.get("MINIRT_ROOT") or DEFAULT_ROOT


def atomic_write_json(path: str, obj: object, durable: bool = False) -> None:
    """Write obj to path through a temp file and a rename; durable: fsync the file and the
    directory too (state that must survive a power loss)."""
    if explain.dry:
        return
    data = (jsonenc.dumps(obj) + "\n").encode()  # before the temp file exists: nothing to clean on error
    tmp = f"{os.path.dirname(path)}/.{os.path.basename(path)}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
        if durable:
            os.fsync(fd)
        os.close(fd)
        fd = -1
        os.replace(tmp, path)
    except BaseException:
        if fd >= 0:
            os.close(fd)
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    if not durable:
        return
    dfd = os.open(os.path.dirname(path), os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def read_json(path: str) -> dict:
    """The record at path. os.open/os.read rather than open(): no TextIOWrapper, whose set-up
    is a third of the cost of reading one record, and `ps` reads them all (~20 µs each at 1000
    containers; docs/performance.md, "Scale")."""
    return jsonenc.loads(read_bytes(path).decode())


def read_bytes(path: str) -> bytes:
    """A whole file's bytes (FileNotFoundError and other OSErrors as open() raises them)."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunk = os.read(fd, 65536)
        if len(chunk) < 65536:  # a short read of a regular file is its end: no second read(2)
            return chunk
        chunks = [chunk]
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


class Store:
    def __init__(self, root: str | None = None):
        self.root = root or root_dir()
        self.containers = f"{self.root}/containers"

    def container_dir(self, cid: str) -> str:
        return f"{self.containers}/{cid}"

    def name_owner(self, name: str) -> str | None:
        try:
            with open(f"{self.root}/names/{name}") as f:
                return f.read().strip()
        except FileNotFoundError:
            return None

    def ids(self) -> list[str]:
        try:
            return sorted(d for d in os.listdir(self.containers) if len(d) == 64)
        except FileNotFoundError:
            return []

    def load(self, cid: str) -> dict:
        return read_json(f"{self.container_dir(cid)}/state.json")

    def records(self):
        """(id, record) of every container whose record can be read now; one being created or
        removed at this moment is skipped (gc judges such directories)."""
        for cid in self.ids():
            try:
                yield cid, self.load(cid)
            except (OSError, ValueError):
                continue

    def resolve(self, ref: str) -> str:
        """A full id, a unique id prefix (12 hex is Docker's short id) or a name -> the full id."""
        from minirt.errors import NoSuchObject

        if not ref:
            raise NoSuchObject("container reference is empty")
        owner = self.name_owner(ref) if "/" not in ref and not ref.startswith(".") else None
        if owner and os.path.isdir(self.container_dir(owner)):
            return owner
        matches = [cid for cid in self.ids() if cid.startswith(ref.lower())]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise NoSuchObject(f"container {ref!r}: ambiguous, matches {', '.join(m[:12] for m in matches)}")
        raise NoSuchObject(f"no such container: {ref}")

    def make_dirs(self, cid: str, owner: dict | None = None) -> str:
        """The container's directory and overlay layers; the id is fresh, so no lock is needed."""
        d = self.container_dir(cid)
        if explain.dry:
            return d
        os.makedirs(self.containers, mode=0o700, exist_ok=True)
        os.mkdir(d, 0o700)
        # Whose directory this is, before anything else: `gc` can tell a run killed before it
        # wrote state.json from one still starting.
        fd = os.open(f"{d}/owner", os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        if owner is None:
            owner = {"pid": os.getpid(), "start_time": procfs.start_time(os.getpid())}
        os.write(fd, f"{owner['pid']} {owner['start_time']}".encode())
        os.close(fd)
        for sub in ("upper", "work", "merged"):
            os.mkdir(f"{d}/{sub}", 0o755)
        return d

    def dir_owner(self, cid: str) -> tuple[int, int | None]:
        return procfs.read_pid_file(f"{self.container_dir(cid)}/owner")

    def register(self, record: dict) -> None:
        """Reserve the name (O_EXCL file, like CNI host-local's lease files), then write the record."""
        name, cid = record["name"], record["id"]
        if explain.dry:
            owner = self.name_owner(name)
            if owner:
                raise ConflictError(
                    f"name {name!r}: already in use by container {owner[:12]} (remove it or choose another name)"
                )
            return
        os.makedirs(f"{self.root}/names", mode=0o700, exist_ok=True)
        path = f"{self.root}/names/{name}"
        # The id goes into a file of the container's own directory first, which is then link()ed
        # into place: link() fails with EEXIST as O_EXCL does, and a name is never seen empty
        # (a run killed between create and write would leave a name nobody could reclaim).
        tmp = f"{self.container_dir(cid)}/name"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, cid.encode())
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)
        except FileExistsError:
            owner = self.name_owner(name) or "?"
            raise ConflictError(
                f"name {name!r}: already in use by container {owner[:12]} (remove it or choose another name)"
            ) from None
        self.save(record)

    def release_name(self, name: str, cid: str) -> None:
        """Idempotent, and only if the name is still ours."""
        if self.name_owner(name) == cid and not explain.dry:
            try:
                os.unlink(f"{self.root}/names/{name}")
            except FileNotFoundError:
                pass

    def save(self, record: dict) -> None:
        """Atomic, and under an exclusive flock of the container's directory, so the supervisor,
        `stop`, `gc` and friends write one at a time (flock works on a directory fd)."""
        self._locked(record["id"], lambda path: atomic_write_json(path, record))

    def update(self, cid: str, change) -> None:
        """Read-modify-write of the record under the same lock as save(): `change(record)`
        edits the record on disk, not a copy a process may hold (network connect)."""

        def rewrite(path: str) -> None:
            rec = read_json(path)
            change(rec)
            atomic_write_json(path, rec)

        self._locked(cid, rewrite)

    def _locked(self, cid: str, fn) -> None:
        if explain.dry:
            return
        d = self.container_dir(cid)
        dfd = os.open(d, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(dfd, fcntl.LOCK_EX)
            fn(f"{d}/state.json")
        finally:
            os.close(dfd)

    def remove(self, cid: str) -> None:
        """Idempotent: a missing directory is already removed."""
        rmtree(self.container_dir(cid))


def rmtree(path: str) -> None:
    """shutil.rmtree without importing shutil (fnmatch, re: ~5 ms on the --rm path); a missing
    path is success. Never follows symlinks."""
    if explain.dry:
        return
    if os.path.islink(path):  # scandir would follow it: remove the link, never its target
        os.unlink(path)
        return
    try:
        it = os.scandir(path)
    except FileNotFoundError:
        return
    with it:
        for entry in it:
            if entry.is_dir(follow_symlinks=False):
                rmtree(entry.path)
            else:
                try:
                    os.unlink(entry.path)
                except FileNotFoundError:
                    pass
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
