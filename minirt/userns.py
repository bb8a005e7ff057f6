"""User namespaces: --uidmap/--gidmap parsing, --userns-remap's /etc/subuid ranges, and the
parent's part of starting a remapped container (maps, idmapped layer, detached volume trees).

Runs in: the minirt parent. parse_map, check_maps, parse_subid, free_start and map_text are
pure (unit-tested); remap() reads, and on first use appends to, the subuid/subgid files.

A map is a list of [container_start, host_start, size] triples, the lines of
/proc/<pid>/uid_map (user_namespaces(7)). The parent writes them itself: it is root in the
initial user namespace, so any range is allowed without newuidmap (the kernel's
new_idmap_permitted: CAP_SETUID over the parent namespace).
"""

import fcntl
import os

from minirt.errors import ConfigError

REMAP_USER = "minirt"  # --userns-remap default: our dockremap
REMAP_SIZE = 65536  # Docker's and useradd's default range size
REMAP_BASE = 100000  # useradd's SUB_UID_MIN, where Docker's dockremap range usually starts
MAX_ID = 1 << 32  # ids are 32-bit; (uid_t)-1 is invalid, so an end of 2^32 - 1 is the limit
MAX_LINES = 340  # the kernel's limit on map lines since 4.15 (UID_GID_MAP_MAX_EXTENTS)
SUBUID, SUBGID = "/etc/subuid", "/etc/subgid"

# linux/mount.h and sched.h values
OPEN_TREE_CLONE = 1
AT_RECURSIVE = 0x8000
MOUNT_ATTR_IDMAP = 0x00100000
CLONE_NEWUSER = 0x10000000


def parse_map(spec: str, what: str = "--uidmap") -> list[int]:
    """podman's CONTAINER:HOST:SIZE, e.g. 0:100000:65536."""
    parts = spec.split(":")
    try:
        if len(parts) != 3:
            raise ValueError
        c, h, n = (int(p, 10) for p in parts)
    except ValueError:
        raise ConfigError(f"{what} {spec!r}: expected CONTAINER:HOST:SIZE (three decimal numbers)") from None
    if n <= 0:
        raise ConfigError(f"{what} {spec!r}: size must be positive")
    if c < 0 or h < 0 or c + n >= MAX_ID or h + n >= MAX_ID:
        raise ConfigError(f"{what} {spec!r}: range exceeds the 32-bit id space")
    return [c, h, n]


def check_maps(m: list[list[int]], what: str = "--uidmap") -> list[list[int]]:
    """The kernel's rules for a map (map_write, mappings_overlap): no two container ranges and
    no two host ranges overlap; at most 340 lines. Ours besides: container id 0 is mapped,
    since the container's init runs as root in its namespace (setresuid(0) after the maps)."""
    if len(m) > MAX_LINES:
        raise ConfigError(f"{what}: at most {MAX_LINES} ranges (the kernel's limit)")
    for col, side in ((0, "container"), (1, "host")):
        spans = sorted((r[col], r[col] + r[2]) for r in m)
        for (_, end), (start, _) in zip(spans, spans[1:]):
            if start < end:
                raise ConfigError(f"{what}: {side} ranges overlap (at id {start})")
    if not any(r[0] == 0 for r in m):
        raise ConfigError(f"{what}: container id 0 must be mapped (the container starts as root)")
    return m


def map_text(m: list[list[int]]) -> str:
    return "".join(f"{c} {h} {n}\n" for c, h, n in m)


def to_host(m: list[list[int]], cid: int) -> int:
    """The host id of container id `cid` (overflow id 65534 when unmapped, as the kernel shows)."""
    for c, h, n in m:
        if c <= cid < c + n:
            return h + cid - c
    return 65534


def parse_subid(text: str) -> list[tuple[str, int, int]]:
    """/etc/subuid lines NAME:START:COUNT (subuid(5)); comments, blanks and malformed lines are
    skipped, as shadow's libsubid does."""
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) != 3:
            continue
        try:
            start, count = int(parts[1]), int(parts[2])
        except ValueError:
            continue
        if start >= 0 and count > 0:
            out.append((parts[0], start, count))
    return out


def free_start(taken: list[tuple[str, int, int]], size: int = REMAP_SIZE, base: int = REMAP_BASE) -> int:
    """The lowest start >= base, on a `size` boundary from base, whose range [start, start+size)
    overlaps no taken range (useradd's find_new_sub_uids looks for a free range the same way)."""
    start = base
    for _, s, n in sorted(taken, key=lambda e: e[1]):
        if s + n <= start:
            continue
        if s >= start + size:
            break
        # overlaps: move past it, to the next boundary
        start = base + -(-(s + n - base) // size) * size
    if start + size >= MAX_ID:
        raise ConfigError("no free subordinate id range left for --userns-remap")
    return start


def files(cfg: dict) -> tuple[str, str]:
    """The subuid and subgid files: $MINIRT_CONFIG's subuid_file/subgid_file (tests), else /etc."""
    return cfg.get("subuid_file") or SUBUID, cfg.get("subgid_file") or SUBGID


def remap(name: str, host_cfg: dict) -> tuple[list[list[int]], list[list[int]]]:
    """--userns-remap NAME|default: NAME's ranges from the subuid and subgid files. `default`
    means the `minirt` entry, added to both files on first use (Docker adds `dockremap`) at
    one start free in both, so container root is the same host uid and gid. No system user is
    created: the entries alone reserve the range for useradd, which skips taken ranges, and we
    write the maps as root without newuidmap, so no account is needed."""
    create = name == "default"
    user = REMAP_USER if create else name
    uid_path, gid_path = files(host_cfg)
    # one lock for both files, on the subuid file itself: two first runs at once must not
    # append two entries (the lock is released when the fd closes)
    fd = os.open(uid_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644) if create else None
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        uids, gids = _read(uid_path), _read(gid_path)
        mine_u = [[0, s, n] for u, s, n in uids if u == user]
        mine_g = [[0, s, n] for u, s, n in gids if u == user]
        if mine_u and mine_g:
            return _stack(mine_u), _stack(mine_g)
        if not create:
            missing = uid_path if not mine_u else gid_path
            raise ConfigError(f"--userns-remap {name}: no entry for {user!r} in {missing}")
        if mine_u or mine_g:
            raise ConfigError(f"--userns-remap default: {user!r} is in only one of {uid_path} and {gid_path}")
        start = free_start(uids + gids)
        line = f"{user}:{start}:{REMAP_SIZE}\n"
        for path in (uid_path, gid_path):
            _append(path, line)
        return [[0, start, REMAP_SIZE]], [[0, start, REMAP_SIZE]]
    finally:
        if fd is not None:
            os.close(fd)


def _stack(ranges: list[list[int]]) -> list[list[int]]:
    """Several entries of one user map one after the other (Docker's createIDMap)."""
    out, c = [], 0
    for _, s, n in ranges:
        out.append([c, s, n])
        c += n
    return out


def _read(path: str) -> list[tuple[str, int, int]]:
    try:
        with open(path) as f:
            return parse_subid(f.read())
    except FileNotFoundError:
        return []


def _append(path: str, line: str) -> None:
    with open(path, "a+") as f:
        f.seek(0)
        text = f.read()
        if text and not text.endswith("\n"):
            line = "\n" + line
        f.write(line)
        f.flush()
        os.fsync(f.fileno())


# ---------------------------------------------------------------------------------------------
# Starting a remapped container (the parent's side; process/spawn.py calls these)


def prepare_dirs(cdir: str, uidmap: list, gidmap: list, layers: int = 0) -> None:
    """Before the fork: the writable layer belongs to container root, so the overlay can create
    files in it. upper and work are new and empty here (or hold files the container made in an
    earlier run): a chown of two directories, no copy. The container directory becomes 0711 so
    container root can reach them by name; it lists nothing (no read bit) and its own files
    stay 0600. `lower` is where the child attaches the idmapped rootfs, or, for an image of
    `layers` layers, `lower/0` (the top one) ... `lower/N-1`, one idmapped mount each."""
    uid, gid = to_host(uidmap, 0), to_host(gidmap, 0)
    for sub in ("upper", "work"):
        os.chown(f"{cdir}/{sub}", uid, gid)
    if not os.path.isdir(cdir + "/lower"):
        os.mkdir(cdir + "/lower", 0o755)
    for i in range(layers):
        os.makedirs(f"{cdir}/lower/{i}", 0o755, exist_ok=True)
    os.chmod(cdir, 0o711)


def write_maps(pid: int, uidmap: list, gidmap: list) -> None:
    """uid_map and gid_map of the child's new user namespace: each may be written once."""
    for name, m in (("uid_map", uidmap), ("gid_map", gidmap)):
        fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, map_text(m).encode())  # one write(2): the kernel takes the map whole
        finally:
            os.close(fd)


def detached_trees(pid: int, roots: list[str], volumes: list) -> list[int]:
    """Detached mounts for the child to attach in its own mount namespace (move_mount), passed
    over the sync socket: nothing is attached on the host, so no teardown step is needed and a
    crash leaves nothing (a detached mount dies with its last fd).

    [:len(roots)] the rootfs (or an image's layers, top first), idmapped to the child's user namespace: files owned by host uid 0 appear
    owned by container root, with no copy and no chown of the image (mount_setattr(2),
    MOUNT_ATTR_IDMAP; only a process privileged over the filesystem's user namespace, i.e. us,
    may create it). The overlay then takes it as lowerdir inside the namespace (overlayfs
    accepts idmapped layers since 5.19; checked on 6.18).
    [1:] each -v source, not idmapped: a host file keeps its host owner, so one owned by host
    root shows as nobody (65534) inside and container root gets no more than others' rights
    on it. Opened here, as host root, so a source below a directory container root may not
    search still mounts (runc opens bind sources in the parent for the same reason)."""
    from minirt import _syscalls

    fds: list[int] = []
    ufd = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    try:
        for rootfs in roots:
            fd = _syscalls.open_tree(rootfs, OPEN_TREE_CLONE | AT_RECURSIVE)
            fds.append(fd)
            _syscalls.mount_setattr(fd, MOUNT_ATTR_IDMAP, ufd, AT_RECURSIVE)
        for v in volumes:
            fds.append(_syscalls.open_tree(v.source, OPEN_TREE_CLONE | AT_RECURSIVE))
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    finally:
        os.close(ufd)
    return fds
