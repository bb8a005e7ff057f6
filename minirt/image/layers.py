"""Unpacking one layer tar into a directory, safely, in overlayfs's format.

Every entry is placed relative to a directory fd of the layer's root and each parent is
opened with O_NOFOLLOW|O_DIRECTORY, one component at a time (openat-style, as runc's
securejoin and containerd's archive do with their own helpers): nothing in the tar can make
us write outside the root, neither `../`, an absolute name, nor a symlink (relative or
absolute) met on the way. Such an entry is refused with an error naming it; the caller
unpacks into a temporary directory and throws it away, so nothing of a refused layer is kept.

    entry kinds      regular files, directories, symlinks (their targets are never followed
                     here), hard links (to an entry already unpacked in this same layer only),
                     fifos, character/block devices (only as root: mknod needs CAP_MKNOD)
    kept             owner (as root), mode (with setuid/setgid bits, set after chown, which
                     clears them), mtime (directories last), xattrs from PAX SCHILY.xattr.*
    refused xattrs   trusted.overlay.* and user.overlay.* (overlayfs's own metadata: a
                     redirect or origin in a layer would steer lookups)
    whiteouts        the OCI image spec's layer format (image-spec layer.md): `.wh.NAME`
                     becomes overlayfs's whiteout, a 0:0 character device NAME;
                     `.wh..wh..opq` sets trusted.overlay.opaque=y on its directory (and
                     user.overlay.opaque=y, read by an overlay mounted with `userxattr` in a
                     user namespace)
                     (Linux Documentation/filesystems/overlayfs.rst, whiteouts and opaque
                     directories), as Docker's overlay2 driver converts them.

Compression is found from the stream's first bytes: gzip (zlib, in-process), zstd (the
`zstd` binary, or the `zstandard` module if installed), or none. The uncompressed stream is
hashed while it is read: the result is the layer's DiffID, checked against the image config.
"""

import errno
import hashlib
import os
import stat
import tarfile

from minirt.errors import MinirtError

WHITEOUT_PREFIX = ".wh."
OPAQUE = ".wh..wh..opq"
OPAQUE_XATTR = "trusted.overlay.opaque"
# overlayfs mounted inside a user namespace cannot read trusted.* (mounted there with
# `userxattr`, it reads user.overlay.* instead): opaque directories carry both
OPAQUE_USER_XATTR = "user.overlay.opaque"
CHUNK = 1 << 20


class LayerError(MinirtError):
    """A layer we refuse: an unsafe entry, a bad stream, a digest that does not match."""


class HashingReader:
    """A read-only file object that hashes what passes through it (and counts it)."""

    def __init__(self, f, algo: str = "sha256"):
        self.f = f
        self.h = hashlib.new(algo)
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.f.read(n)
        self.h.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

    def digest(self) -> str:
        return "sha256:" + self.h.hexdigest()


class _Peeked:
    """A stream whose first bytes were read to sniff the compression, then given back."""

    def __init__(self, f, head: bytes):
        self.f, self.head = f, head

    def read(self, n: int = -1) -> bytes:
        if self.head:
            if n < 0:
                data, self.head = self.head + self.f.read(), b""
                return data
            data, self.head = self.head[:n], self.head[n:]
            if len(data) < n:
                data += self.f.read(n - len(data))
            return data
        return self.f.read(n)


class _Zstd:
    """zstd through the `zstd` binary: a child process fed by a thread (the input may be a
    member of a tar archive, not a file descriptor)."""

    def __init__(self, f):
        import shutil
        import subprocess
        import threading

        exe = shutil.which("zstd")
        if exe is None:
            raise LayerError("layer is zstd-compressed: install the `zstd` program (apt-get install zstd) "
                             "or the `zstandard` Python module")  # fmt: skip
        self.proc = subprocess.Popen([exe, "-d", "-c", "-q"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.error = None

        def feed():
            try:
                while data := f.read(CHUNK):
                    self.proc.stdin.write(data)
            except (OSError, ValueError) as e:
                self.error = e
            finally:
                try:
                    self.proc.stdin.close()
                except OSError:
                    pass

        self.thread = threading.Thread(target=feed, daemon=True)
        self.thread.start()

    def read(self, n: int = -1) -> bytes:
        data = self.proc.stdout.read(n)
        if not data:
            self.close()
        return data

    def close(self) -> None:
        if self.proc.returncode is None:
            self.proc.stdout.close()
            rc = self.proc.wait()
            self.thread.join()
            if rc != 0:
                raise LayerError(f"layer: zstd could not decompress it (exit {rc})")


def decompressed(f):
    """A reader of f's uncompressed bytes, whatever the compression (sniffed, not trusted
    from a media type: docker save tars and some registries mislabel)."""
    head = f.read(4)
    f = _Peeked(f, head)
    if head[:2] == b"\x1f\x8b":
        import gzip

        return gzip.GzipFile(fileobj=f, mode="rb")
    if head == b"\x28\xb5\x2f\xfd":
        try:
            import zstandard
        except ImportError:
            return _Zstd(f)
        return zstandard.ZstdDecompressor().stream_reader(f)
    return f


def _components(name: str, what: str) -> list[str]:
    """A tar member name as path components below the layer root; `./` and trailing slashes
    are fine, an absolute name or a `..` component is refused."""
    if name.startswith("/"):
        raise LayerError(f"layer entry {what!r}: absolute path refused")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise LayerError(f"layer entry {what!r}: path escapes the layer (`..`)")
    return parts


class Unpacker:
    """Writes one layer below root_fd (an O_DIRECTORY fd of an empty directory)."""

    def __init__(self, root_fd: int, allow_devices: bool | None = None):
        self.root_fd = root_fd
        self.as_root = os.geteuid() == 0
        self.allow_devices = self.as_root if allow_devices is None else allow_devices
        self.dir_times: list[tuple[list[str], int]] = []
        self.size = 0

    # -- walking -------------------------------------------------------------------------------

    def _open_dir(self, parts: list[str], what: str, create: bool = True) -> int:
        """The fd of root/parts, every component opened without following a symlink; missing
        directories are made 0755 (Docker's archive does the same for implied parents)."""
        fd = os.dup(self.root_fd)
        try:
            for part in parts:
                try:
                    nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                except FileNotFoundError:
                    if not create:
                        raise LayerError(f"layer entry {what!r}: {part!r} does not exist in this layer") from None
                    os.mkdir(part, 0o755, dir_fd=fd)
                    nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fd)
                except OSError as e:
                    if e.errno in (errno.ELOOP, errno.ENOTDIR):
                        st = os.stat(part, dir_fd=fd, follow_symlinks=False)
                        kind = "a symlink" if stat.S_ISLNK(st.st_mode) else "not a directory"
                        raise LayerError(f"layer entry {what!r}: path component {part!r} is {kind}: "
                                         "refusing to follow it") from None  # fmt: skip
                    raise
                os.close(fd)
                fd = nfd
            return fd
        except BaseException:
            os.close(fd)
            raise

    def _clear(self, dfd: int, name: str, keep_dir: bool) -> None:
        """A later entry replaces an earlier one of the same name (tar semantics); a directory
        stays when the new entry is a directory too."""
        try:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode) and keep_dir:
            return
        _remove_at(dfd, name, st)

    # -- entries -------------------------------------------------------------------------------

    def add(self, member: tarfile.TarInfo, tar: tarfile.TarFile) -> None:
        parts = _components(member.name, member.name)
        if not parts:  # the root directory itself: its metadata only
            if member.isdir():
                self._meta(self.root_fd, None, member)
                self.dir_times.append(([], int(member.mtime)))
            return
        *parents, base = parts
        dfd = self._open_dir(parents, member.name)
        try:
            if base.startswith(WHITEOUT_PREFIX):
                self._whiteout(dfd, base, member)
                return
            if member.isdir():
                self._clear(dfd, base, keep_dir=True)
                try:
                    os.mkdir(base, 0o700, dir_fd=dfd)
                except FileExistsError:
                    pass
                self.dir_times.append((parts, int(member.mtime)))
            elif member.isreg():
                self._clear(dfd, base, keep_dir=False)
                fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                             dir_fd=dfd)  # fmt: skip
                try:
                    src = tar.extractfile(member)
                    while data := src.read(CHUNK):
                        os.write(fd, data)
                finally:
                    os.close(fd)
                self.size += member.size
            elif member.issym():
                self._clear(dfd, base, keep_dir=False)
                os.symlink(member.linkname, base, dir_fd=dfd)  # never followed by us
            elif member.islnk():
                self._hardlink(dfd, base, member)
                return  # a hard link shares the target's inode and metadata
            elif member.ischr() or member.isblk():
                if not self.allow_devices:
                    raise LayerError(f"layer entry {member.name!r}: device nodes need root")
                self._clear(dfd, base, keep_dir=False)
                kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
                os.mknod(base, kind | 0o600, os.makedev(member.devmajor, member.devminor), dir_fd=dfd)
            elif member.isfifo():
                self._clear(dfd, base, keep_dir=False)
                os.mkfifo(base, 0o600, dir_fd=dfd)
            else:
                raise LayerError(f"layer entry {member.name!r}: unsupported tar entry type {member.type!r}")
            self._meta(dfd, base, member)
        finally:
            os.close(dfd)

    def _hardlink(self, dfd: int, base: str, member: tarfile.TarInfo) -> None:
        """A hard link's target must be an entry of this layer, reached without symlinks:
        `ln /etc/shadow x` in a layer would otherwise link a host file into the image."""
        target = _components(member.linkname, member.name)
        if not target:
            raise LayerError(f"layer entry {member.name!r}: hard link to the layer root")
        *tparents, tbase = target
        tfd = self._open_dir(tparents, member.name, create=False)
        try:
            try:
                st = os.stat(tbase, dir_fd=tfd, follow_symlinks=False)
            except FileNotFoundError:
                raise LayerError(f"layer entry {member.name!r}: hard link target {member.linkname!r} "
                                 "is not in this layer") from None  # fmt: skip
            if stat.S_ISDIR(st.st_mode):
                raise LayerError(f"layer entry {member.name!r}: hard link to a directory")
            self._clear(dfd, base, keep_dir=False)
            os.link(tbase, base, src_dir_fd=tfd, dst_dir_fd=dfd, follow_symlinks=False)
        finally:
            os.close(tfd)

    def _whiteout(self, dfd: int, base: str, member: tarfile.TarInfo) -> None:
        if base == OPAQUE:
            # the directory's own fd: this is dfd itself (an xattr on "." of the parent walk)
            os.setxattr(f"/proc/self/fd/{dfd}", OPAQUE_XATTR, b"y")
            try:
                os.setxattr(f"/proc/self/fd/{dfd}", OPAQUE_USER_XATTR, b"y")
            except OSError as e:  # a store on a filesystem without user xattrs
                if e.errno not in (errno.ENOTSUP, errno.EPERM):
                    raise
            return
        name = base[len(WHITEOUT_PREFIX) :]
        if not name or name in (".", "..") or name.startswith(WHITEOUT_PREFIX):
            raise LayerError(f"layer entry {member.name!r}: malformed whiteout")
        self._clear(dfd, name, keep_dir=False)
        # overlayfs's whiteout: a character device 0:0 (needs CAP_MKNOD, as every overlay
        # whiteout does; the kernel allows 0:0 in a user namespace since 5.8)
        os.mknod(name, stat.S_IFCHR | 0o000, os.makedev(0, 0), dir_fd=dfd)
        if self.as_root:
            os.chown(name, member.uid, member.gid, dir_fd=dfd, follow_symlinks=False)

    def _meta(self, dfd: int, base: str | None, member: tarfile.TarInfo) -> None:
        """Owner, then mode (chown clears setuid bits), xattrs, mtime; a symlink gets only its
        owner and mtime (Linux has no lchmod)."""
        def path_args():
            return (base, {"dir_fd": dfd, "follow_symlinks": False}) if base else (f"/proc/self/fd/{dfd}", {})

        p, kw = path_args()
        if self.as_root:
            os.chown(p, member.uid, member.gid, **kw)
        if not member.issym():
            os.chmod(p, stat.S_IMODE(member.mode), **({"dir_fd": dfd} if base else {}))
        xattrs = {k[len("SCHILY.xattr."):]: v for k, v in member.pax_headers.items() if k.startswith("SCHILY.xattr.")}
        for k in xattrs:
            # overlayfs's own metadata (redirect, origin, metacopy, opaque) would steer the
            # kernel's lookups through the layers: only whiteout conversion may set it
            if k.startswith(("trusted.overlay.", "user.overlay.")):
                raise LayerError(f"layer entry {member.name!r}: overlayfs xattr {k} refused")
        if xattrs and not member.issym():
            full = f"/proc/self/fd/{dfd}/{base}" if base else f"/proc/self/fd/{dfd}"
            for k, v in xattrs.items():
                if not self.as_root and k.startswith(("trusted.", "security.")):
                    continue
                try:
                    os.setxattr(full, k, v.encode("utf-8", "surrogateescape"), follow_symlinks=False)
                except OSError as e:
                    if e.errno not in (errno.ENOTSUP, errno.EPERM):
                        raise
        if not member.isdir():
            os.utime(p, (member.mtime, member.mtime), **kw)

    def finish(self) -> None:
        """Directory mtimes last, deepest first: unpacking their contents changed them."""
        for parts, mtime in sorted(self.dir_times, key=lambda t: -len(t[0])):
            if not parts:
                os.utime(f"/proc/self/fd/{self.root_fd}", (mtime, mtime))
                continue
            *parents, base = parts
            try:
                dfd = self._open_dir(parents, "/".join(parts), create=False)
            except LayerError:
                continue  # replaced later in the layer by a non-directory
            try:
                os.utime(base, (mtime, mtime), dir_fd=dfd, follow_symlinks=False)
            except FileNotFoundError:
                pass
            finally:
                os.close(dfd)


def _rmtree_fd(dfd: int) -> None:
    for name in os.listdir(dfd):
        _remove_at(dfd, name, os.stat(name, dir_fd=dfd, follow_symlinks=False))


def _remove_at(dfd: int, name: str, st: os.stat_result) -> None:
    """Remove `name` under directory fd `dfd`, a directory with everything in it, never
    following a symlink."""
    if stat.S_ISDIR(st.st_mode):
        sub = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dfd)
        try:
            _rmtree_fd(sub)
        finally:
            os.close(sub)
        os.rmdir(name, dir_fd=dfd)
    else:
        os.unlink(name, dir_fd=dfd)


def unpack(stream, dest: str, allow_devices: bool | None = None) -> tuple[str, int]:
    """Unpack a (possibly compressed) layer tar from `stream` into the empty directory dest.
    Returns (DiffID, the unpacked size in bytes of regular files). Raises LayerError for an
    unsafe entry or a bad archive; dest is then partly written and is the caller's to remove."""
    raw = HashingReader(decompressed(stream))
    root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        u = Unpacker(root_fd, allow_devices)
        try:
            with tarfile.open(fileobj=raw, mode="r|") as tar:
                for member in tar:
                    u.add(member, tar)
            u.finish()
            raw.drain()  # the zero blocks after the end-of-archive marker are part of the DiffID
            close = getattr(raw.f, "close", None)
            if close:
                close()
        except tarfile.TarError as e:
            raise LayerError(f"layer: not a valid tar archive ({e})") from None
        except EOFError:
            raise LayerError("layer: the archive ends early (truncated)") from None
        except OSError as e:
            if type(e).__name__ != "BadGzipFile":
                raise
            raise LayerError(f"layer: bad gzip data ({e})") from None
        except Exception as e:
            if type(e).__module__ != "zlib":
                raise
            raise LayerError(f"layer: bad gzip data ({e})") from None
        return raw.digest(), u.size
    finally:
        os.close(root_fd)


def remove_tree(path: str) -> None:
    """rm -r without following symlinks (a refused layer may hold hostile ones)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        _rmtree_fd(fd)
    finally:
        os.close(fd)
    os.rmdir(path)
