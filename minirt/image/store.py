"""The image store: content-addressed, on persistent storage (images survive a reboot; the
containers under MINIRT_ROOT, a tmpfs, do not).

    $MINIRT_STORE (else $MINIRT_CONFIG's "image_store", else /var/lib/minirt)
      lock                      flock: LOCK_SH held by every writer (load, import) for its
                                whole run, LOCK_EX by gc, so gc never takes a writer's
                                temporary content or fresh layers for garbage
      index.lock                flock: LOCK_EX around every change to images/ and repositories.json
      blobs/sha256/<hex>        image configs and manifests, verified against their digest
      layers/<diffid hex>/root  one unpacked layer (overlayfs format: whiteouts are 0:0 devices)
      layers/<diffid hex>/size  bytes of regular files in it (for `images`' SIZE)
      locks/<hex>               flock: one unpack per layer at a time (a second loader waits,
                                then finds the layer made: layers are shared, never unpacked twice)
      images/<id hex>.json      one image: its config (the blob), DiffIDs, size, when loaded
      repositories.json         {"docker.io/library/busybox:latest": "sha256:<id>", ...}
      tmp/                      partial content: a layer is unpacked in tmp/<random>/ and renamed
                                into layers/ whole, so a crash leaves only tmp/ (gc empties it)

An image's ID is the sha256 of its config blob (Docker's image ID). Compressed layer blobs are
not kept: a layer is verified (compressed digest when known, DiffID always) as it streams into
its unpacked directory, and only that directory is kept (as Docker's overlay2 store does).
"""

import fcntl
import os
import time

from minirt.errors import NoSuchObject
from minirt.state import atomic_write_json, read_json

DEFAULT_STORE = "/var/lib/minirt"


def store_dir() -> str:
    env = os.environ.get("MINIRT_STORE")
    if env:
        return env
    from minirt.config import host_config

    return host_config().get("image_store") or DEFAULT_STORE


def hex_of(digest: str) -> str:
    algo, _, hexpart = digest.partition(":")
    if algo != "sha256" or len(hexpart) != 64 or any(c not in "0123456789abcdef" for c in hexpart):
        raise ValueError(f"not a sha256 digest: {digest!r}")
    return hexpart


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class _Flock:
    def __init__(self, path: str, mode: int):
        self.path, self.mode = path, mode

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, self.mode)
        return self

    def __exit__(self, *exc):
        os.close(self.fd)  # closing drops the lock


class ImageStore:
    def __init__(self, root: str | None = None):
        self.root = root or store_dir()
        self.layers = f"{self.root}/layers"

    # -- layout ----------------------------------------------------------------------------

    def ensure(self) -> None:
        for d in ("blobs/sha256", "layers", "images", "tmp", "locks"):
            os.makedirs(f"{self.root}/{d}", mode=0o700, exist_ok=True)

    def writing(self) -> _Flock:
        """Held (shared) by a load or import from its first temporary file to its last index write."""
        self.ensure()
        return _Flock(f"{self.root}/lock", fcntl.LOCK_SH)

    def exclusive(self) -> _Flock:
        self.ensure()
        return _Flock(f"{self.root}/lock", fcntl.LOCK_EX)

    def index_lock(self) -> _Flock:
        self.ensure()
        return _Flock(f"{self.root}/index.lock", fcntl.LOCK_EX)

    def tempdir(self) -> str:
        import secrets

        path = f"{self.root}/tmp/{secrets.token_hex(8)}"
        os.mkdir(path, 0o700)
        return path

    def layer_root(self, diffid: str) -> str:
        return f"{self.layers}/{hex_of(diffid)}/root"

    def has_layer(self, diffid: str) -> bool:
        return os.path.isdir(self.layer_root(diffid))

    def layer_size(self, diffid: str) -> int:
        try:
            with open(f"{self.layers}/{hex_of(diffid)}/size") as f:
                return int(f.read())
        except (FileNotFoundError, ValueError):
            return 0

    # -- blobs -----------------------------------------------------------------------------

    def put_blob(self, data: bytes, expected: str | None = None) -> str:
        import hashlib

        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        if expected and expected != digest:
            from minirt.image.layers import LayerError

            raise LayerError(f"blob {expected}: content has digest {digest} (corrupt or tampered)")
        path = f"{self.root}/blobs/sha256/{hex_of(digest)}"
        if not os.path.exists(path):
            tmp = f"{self.root}/tmp/blob-{hex_of(digest)}-{os.getpid()}"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        return digest

    def blob(self, digest: str) -> bytes:
        with open(f"{self.root}/blobs/sha256/{hex_of(digest)}", "rb") as f:
            return f.read()

    # -- layers ----------------------------------------------------------------------------

    def layer_lock(self, diffid: str) -> _Flock:
        """One unpack (or download) of a layer at a time, across processes."""
        return _Flock(f"{self.root}/locks/{hex_of(diffid)}", fcntl.LOCK_EX)

    def add_layer(self, stream_opener, expected: str | None = None, what: str = "layer", log=None) -> str:
        """Unpack a layer (stream_opener() -> a readable stream) unless the store has it.
        With `expected` (the DiffID from the image config) the store is asked first, under the
        layer's lock, so concurrent loads of one image unpack each layer once; the unpacked
        content must hash to it. Returns the DiffID."""
        if expected is not None:
            hex_of(expected)
            with self.layer_lock(expected):
                if self.has_layer(expected):
                    return expected
                if log:
                    log(f"{hex_of(expected)[:12]}: Loading layer")
                return self.unpack_layer(stream_opener, expected, what)
        return self.unpack_layer(stream_opener, None, what)

    def unpack_layer(self, stream_opener, expected: str | None, what: str) -> str:
        """Unpack into tmp/, verify, rename into layers/ (the caller holds the layer lock)."""
        from minirt.image import layers

        tmp = self.tempdir()
        try:
            os.mkdir(f"{tmp}/root", 0o755)
            with stream_opener() as stream:
                diffid, size = layers.unpack(stream, f"{tmp}/root")
            if expected is not None and diffid != expected:
                raise layers.LayerError(f"{what}: content has DiffID {diffid}, the image config says {expected} "
                                        "(corrupt or tampered)")  # fmt: skip
            with open(f"{tmp}/size", "w") as f:
                f.write(str(size))
            final = f"{self.layers}/{hex_of(diffid)}"
            try:
                os.rename(tmp, final)  # whole, or not at all
            except OSError:
                if not os.path.isdir(final):
                    raise
                layers.remove_tree(tmp)  # another import made the same layer first: share it
            return diffid
        except BaseException:
            layers.remove_tree(tmp)
            raise

    # -- images and names ------------------------------------------------------------------

    def _repos(self) -> dict:
        try:
            return read_json(f"{self.root}/repositories.json")
        except FileNotFoundError:
            return {}

    def image(self, image_id: str) -> dict:
        return read_json(f"{self.root}/images/{hex_of(image_id)}.json")

    def image_ids(self) -> list[str]:
        try:
            return ["sha256:" + n[:-5] for n in os.listdir(f"{self.root}/images") if n.endswith(".json")]
        except FileNotFoundError:
            return []

    def add_image(self, config_bytes: bytes, diffids: list[str], keys: list[str], expected_id: str | None = None,
                  repo_digests: list[str] | None = None) -> str:
        """Record an image whose layers are all in the store, and point `keys` (full
        references) at it; a key that named another image moves (that one may become
        dangling, as in Docker)."""
        import json

        config = json.loads(config_bytes)
        want = (config.get("rootfs") or {}).get("diff_ids") or []
        if want != diffids:
            from minirt.image.layers import LayerError

            raise LayerError(f"image config lists {len(want)} layer DiffIDs that do not match its "
                             f"{len(diffids)} layers")  # fmt: skip
        image_id = self.put_blob(config_bytes, expected_id)
        record = {
            "id": image_id,
            "layers": diffids,
            "size": sum(self.layer_size(d) for d in diffids),
            "created": config.get("created") or "",
            "loaded": now(),
            "config": config,
        }
        with self.index_lock():
            path = f"{self.root}/images/{hex_of(image_id)}.json"
            try:
                old = read_json(path)
            except FileNotFoundError:
                old = None
            digests = sorted(set((old or {}).get("repo_digests") or []) | set(repo_digests or []))
            if old is None or digests != (old.get("repo_digests") or []):
                if digests:
                    record["repo_digests"] = digests  # name@manifest digest (Docker's RepoDigests)
                atomic_write_json(path, dict(old or record, repo_digests=digests) if old else record, durable=True)
            if keys:
                repos = self._repos()
                repos.update((k, image_id) for k in keys)
                atomic_write_json(f"{self.root}/repositories.json", repos, durable=True)
        return image_id

    def tags_of(self, image_id: str, repos: dict | None = None) -> list[str]:
        repos = self._repos() if repos is None else repos
        return sorted(k for k, v in repos.items() if v == image_id)

    def listing(self) -> list[tuple[dict, list[str]]]:
        repos = self._repos()
        out = []
        for image_id in self.image_ids():
            try:
                out.append((self.image(image_id), self.tags_of(image_id, repos)))
            except (FileNotFoundError, ValueError):
                continue
        return out

    def lookup(self, text: str) -> tuple[str, str | None]:
        """(image ID, the matching index key or None) for a name[:tag], name@digest, a full
        ID (sha256:<hex>) or an unambiguous ID prefix, in Docker's order: a name first."""
        from minirt.image import reference

        repos = self._repos()
        try:
            ref = reference.parse(text)
        except Exception:  # noqa: BLE001 - not a name: maybe an ID prefix
            ref = None
        if ref is not None and ref.key() in repos:
            return repos[ref.key()], ref.key()
        if ref is not None and ref.digest:
            for image_id in self.image_ids():
                try:
                    if ref.key() in (self.image(image_id).get("repo_digests") or []):
                        return image_id, None
                except (FileNotFoundError, ValueError):
                    continue
        prefix = text.removeprefix("sha256:")
        if prefix and all(c in "0123456789abcdef" for c in prefix):
            hits = [i for i in self.image_ids() if i[7:].startswith(prefix)]
            if len(hits) == 1:
                return hits[0], None
            if len(hits) > 1:
                raise NoSuchObject(f"image {text!r}: ambiguous ID prefix ({len(hits)} images)")
        raise NoSuchObject(f"Unable to find image '{text}' locally")

    def untag(self, key: str) -> None:
        with self.index_lock():
            repos = self._repos()
            repos.pop(key, None)
            atomic_write_json(f"{self.root}/repositories.json", repos, durable=True)

    def delete_image(self, image_id: str) -> None:
        """The record and its names; layers and the config blob stay until `gc`."""
        with self.index_lock():
            repos = self._repos()
            left = {k: v for k, v in repos.items() if v != image_id}
            if left != repos:
                atomic_write_json(f"{self.root}/repositories.json", left, durable=True)
            try:
                os.unlink(f"{self.root}/images/{hex_of(image_id)}.json")
            except FileNotFoundError:
                pass

    # -- garbage ---------------------------------------------------------------------------

    def gc(self, in_use_layers: set[str], dry_run: bool = False) -> list[str]:
        """Remove temporary content, layers no image and no container uses, and blobs no image
        names (configs of deleted images). Waits for running loads (the store lock)."""
        from minirt.image.layers import remove_tree

        if not os.path.isdir(self.root):
            return []
        removed = []
        with self.exclusive(), self.index_lock():
            for name in sorted(os.listdir(f"{self.root}/tmp")):
                removed.append(f"image store: partial content tmp/{name}")
                if not dry_run:
                    path = f"{self.root}/tmp/{name}"
                    remove_tree(path) if os.path.isdir(path) and not os.path.islink(path) else os.unlink(path)
            keep_layers = set(in_use_layers)
            keep_blobs = set()
            for image_id in self.image_ids():
                try:
                    rec = self.image(image_id)
                except (FileNotFoundError, ValueError):
                    continue
                keep_layers.update(rec["layers"])
                keep_blobs.add(image_id)
                keep_blobs.update(rec.get("blobs") or [])
            keep_hex = {hex_of(d) for d in keep_layers}
            for name in sorted(os.listdir(f"{self.root}/locks")):
                if name not in keep_hex and not dry_run:
                    os.unlink(f"{self.root}/locks/{name}")  # no holder: gc has the store lock
            for name in sorted(os.listdir(self.layers)):
                if name not in keep_hex:
                    removed.append(f"image store: unused layer sha256:{name}")
                    if not dry_run:
                        remove_tree(f"{self.layers}/{name}")
            keep_blob_hex = {hex_of(d) for d in keep_blobs}
            for name in sorted(os.listdir(f"{self.root}/blobs/sha256")):
                if name not in keep_blob_hex:
                    removed.append(f"image store: unused blob sha256:{name}")
                    if not dry_run:
                        os.unlink(f"{self.root}/blobs/sha256/{name}")
        return removed


def containers_using(image_id: str) -> list[dict]:
    """The container records (any state) whose config names this image."""
    from minirt.state import Store

    return [rec for _cid, rec in Store().records()
            if ((rec.get("config") or {}).get("image") or {}).get("id") == image_id]


def layers_in_use() -> set[str]:
    """DiffIDs of every container record's image: kept by gc even after `rmi -f`."""
    from minirt.state import Store

    used: set[str] = set()
    for _cid, rec in Store().records():
        used.update(((rec.get("config") or {}).get("image") or {}).get("layers") or [])
    return used

