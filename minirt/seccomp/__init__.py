"""Seccomp for containers: the profile a container gets, and its BPF program, compiled once.

Runs in: the minirt parent (run, start, exec) before the container process is forked; the
container init only attaches the bytes it is handed (minirt/_syscalls.c seccomp_set_filter),
last before execve, after no_new_privs.

Compiling Docker's ~370-rule profile with libseccomp costs 15-25 ms here, most of a start-up,
so the program is cached under $MINIRT_ROOT, keyed by what decides it:

    $MINIRT_ROOT/seccomp/
      <sha256>.bpf          the program (struct sock_filter[]), written temp + rename
      <sha256>.skipped      names libseccomp did not know, for the --explain note (if any)
      libseccomp.version    "<version>" then one "<path> <inode> <mtime_ns> <size>" line per
                            file that decides it (our _seccomp extension, the libseccomp.so it
                            mapped); the warm path stats them instead of loading libseccomp

    key = sha256("minirt-seccomp 1", profile bytes, sorted CAP_ names, libseccomp version,
                 uname machine, uname release)

The warm path reads three small files and hashes the profile: it imports neither json nor the
libseccomp extension (measured in docs/security.md).

Be aware:
- a custom profile's path is read again at each start and exec, as the file is now (Docker
  keeps the profile's text in the container's config instead);
- the cache is never pruned: one entry per profile and capability set, about 8 KiB each.
"""

import os

from minirt import explain

DEFAULT = "default"
UNCONFINED = "unconfined"
KEY_VERSION = b"minirt-seccomp 1"
PROFILE = os.path.join(os.path.dirname(__file__), "default.json")


def effective(mode: str | None, privileged: bool) -> str:
    """What a container gets: --privileged implies unconfined (Docker: WithSeccomp returns early
    for a privileged container); no setting (records older than seccomp support) means default."""
    if privileged:
        return UNCONFINED
    return mode or DEFAULT


def profile_path(mode: str) -> str:
    return PROFILE if mode == DEFAULT else mode


def cache_key(profile: bytes, caps, version: str, machine: str, release: str) -> str:
    """sha256 over length-prefixed parts: the profile's raw bytes, the sorted capability names as
    the profile spells them, the libseccomp version, uname's machine and release (minKernel rules
    and the architecture list depend on them; a new kernel release misses once)."""
    from minirt._syscalls import sha256_hex  # hashlib's _sha2 would cost ~0.7 ms to load

    parts = [KEY_VERSION, profile, ",".join(sorted("CAP_" + c.upper() for c in caps)).encode(), version.encode(),
             machine.encode(), release.encode()]  # fmt: skip
    return sha256_hex(b"".join(len(p).to_bytes(8, "little") + p for p in parts))


def _identity(path: str) -> str:
    st = os.stat(path)
    return f"{path} {st.st_ino} {st.st_mtime_ns} {st.st_size}"


def libseccomp_version(cache: str) -> str:
    """The libseccomp version, from the version file while the files it names are unchanged;
    else from the library itself (loading it), and the file is rewritten."""
    path = f"{cache}/libseccomp.version"
    try:
        with open(path) as f:
            version, *files = f.read().splitlines()
        if files and all(_identity(line.rsplit(" ", 3)[0]) == line for line in files):
            return version
    except (OSError, ValueError):
        pass
    from minirt.seccomp.compile import libseccomp_identity

    version, files = libseccomp_identity()
    _write_atomic(path, "\n".join([version, *(_identity(p) for p in files)]).encode() + b"\n")
    return version


def _write_atomic(path: str, data: bytes) -> None:
    """temp + rename: a reader sees the old file, the new one or none, never a part (a cached
    program cut short would be a different filter)."""
    if explain.dry:
        return
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class Program:
    """A compiled filter: its BPF bytes and cache key (kept in the container's record for exec)."""

    __slots__ = ("bpf", "key")

    def __init__(self, bpf: bytes, key: str):
        self.bpf, self.key = bpf, key


def program(mode: str, caps, root: str) -> Program | None:
    """The container's filter, from the cache or compiled into it; None when unconfined (also for
    a profile that disables seccomp). Raises ConfigError for a profile that cannot be read or
    compiled, before anything of the container exists."""
    if mode == UNCONFINED:
        return None
    src = profile_path(mode)
    try:
        with open(src, "rb") as f:
            text = f.read()
    except OSError as e:
        from minirt.errors import ConfigError

        raise ConfigError(f"opening seccomp profile ({src}) failed: {e.strerror}") from None
    cache = f"{root}/seccomp"
    if not explain.dry:  # a dry run compiles when it must, and caches nothing
        os.makedirs(cache, mode=0o700, exist_ok=True)
    u = os.uname()
    version = libseccomp_version(cache)
    key = cache_key(text, caps, version, u.machine, u.release)
    bpf_path = f"{cache}/{key}.bpf"
    try:
        with open(bpf_path, "rb") as f:
            bpf = f.read()
        if explain.enabled:
            _explain_skipped(f"{cache}/{key}.skipped", version)
    except FileNotFoundError:
        from minirt.seccomp.compile import compile_profile

        bpf, skipped = compile_profile(text, caps, u.machine, u.release, where=src)
        if skipped:
            _write_atomic(f"{cache}/{key}.skipped", " ".join(skipped).encode())
            explain.cmd(f"# seccomp: skipped syscalls unknown to libseccomp {version}: {', '.join(skipped)}")
        _write_atomic(bpf_path, bpf)
    return Program(bpf, key) if bpf else None


def _explain_skipped(path: str, version: str) -> None:
    try:
        with open(path) as f:
            names = f.read().split()
    except FileNotFoundError:
        return
    explain.cmd(f"# seccomp: skipped syscalls unknown to libseccomp {version}: {', '.join(names)}")


def cached(root: str, key: str) -> bytes | None:
    """The program a running container was started with (its record keeps the key), for exec."""
    try:
        with open(f"{root}/seccomp/{key}.bpf", "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None
