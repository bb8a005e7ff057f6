"""Reading images out of archives: `docker save` tarballs (manifest.json, a config and layer
tars) and OCI image layouts (oci-layout, index.json, blobs/; image-spec image-layout.md),
each either a tar file or a directory. Docker >= 25 writes both at once; manifest.json wins
then, since it carries the RepoTags.

Every blob named by digest is verified: configs and manifests when read, layers while they
stream (the compressed digest for OCI descriptors, the DiffID against the config always).
"""

import json
import os
import posixpath
import tarfile

from minirt.image.layers import HashingReader, LayerError
from minirt.image.store import ImageStore, hex_of

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")


class ArchiveError(LayerError):
    pass


class _DirSource:
    def __init__(self, path: str):
        self.base = os.path.realpath(path)

    def _path(self, name: str) -> str:
        p = os.path.realpath(os.path.join(self.base, name))
        if not (p + "/").startswith(self.base + "/"):
            raise ArchiveError(f"archive entry {name!r} points outside the directory")
        return p

    def exists(self, name: str) -> bool:
        return os.path.isfile(self._path(name))

    def open(self, name: str):
        try:
            return open(self._path(name), "rb")
        except FileNotFoundError:
            raise ArchiveError(f"archive: {name} is missing") from None

    def close(self) -> None:
        pass


class _TarSource:
    """Random access to members of a (possibly compressed) tar; symlinks and hard links
    inside it (docker save >= 25 links <id>/layer.tar to blobs/) resolved within it."""

    def __init__(self, path: str):
        try:
            self.tar = tarfile.open(path, "r:*")
            self.members = {}
            for m in self.tar.getmembers():
                self.members[posixpath.normpath(m.name.lstrip("/")).removeprefix("./")] = m
        except (tarfile.TarError, EOFError) as e:
            raise ArchiveError(f"{path}: not a tar archive or image layout directory ({e})") from None

    def _member(self, name: str, hops: int = 0):
        m = self.members.get(posixpath.normpath(name))
        if m is None:
            raise ArchiveError(f"archive: {name} is missing")
        if m.issym() and hops < 10:
            return self._member(posixpath.join(posixpath.dirname(name), m.linkname), hops + 1)
        if m.islnk() and hops < 10:
            return self._member(m.linkname, hops + 1)
        return m

    def exists(self, name: str) -> bool:
        try:
            return self._member(name).isfile()
        except ArchiveError:
            return False

    def open(self, name: str):
        f = self.tar.extractfile(self._member(name))
        if f is None:
            raise ArchiveError(f"archive: {name} is not a file")
        return f

    def close(self) -> None:
        self.tar.close()


def open_source(path: str):
    if os.path.isdir(path):
        return _DirSource(path)
    if not os.path.exists(path):
        raise ArchiveError(f"open {path}: no such file or directory")
    return _TarSource(path)


def _read(src, name: str, digest: str | None = None, limit: int = 16 << 20) -> bytes:
    with src.open(name) as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ArchiveError(f"archive: {name} is larger than {limit} bytes")
    if digest:
        import hashlib

        got = "sha256:" + hashlib.sha256(data).hexdigest()
        if got != digest:
            raise ArchiveError(f"archive: {name} has digest {got}, expected {digest} (corrupt or tampered)")
    return data


def _json(data: bytes, what: str):
    try:
        return json.loads(data)
    except ValueError as e:
        raise ArchiveError(f"archive: {what} is not valid JSON ({e})") from None


class _Opener:
    """A context manager factory for the store: opens a layer member, checks its size and
    compressed digest (when the archive names one) once the stream is consumed."""

    def __init__(self, src, name: str, digest: str | None = None, size: int | None = None):
        self.src, self.name, self.digest, self.size = src, name, digest, size

    def __call__(self):
        return self

    def __enter__(self):
        self.f = self.src.open(self.name)
        self.reader = HashingReader(self.f)
        return self.reader

    def __exit__(self, exc_type, *exc):
        self.f.close()
        if exc_type is None and self.digest:
            self.reader.drain()
            if self.reader.digest() != self.digest:
                raise ArchiveError(f"layer {self.name}: has digest {self.reader.digest()}, expected {self.digest} "
                                   "(corrupt or tampered)")  # fmt: skip
            if self.size is not None and self.reader.size != self.size:
                raise ArchiveError(f"layer {self.name}: {self.reader.size} bytes, the manifest says {self.size}")


def host_platform() -> tuple[str, str]:
    machine = os.uname().machine
    return "linux", {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386"}.get(machine, machine)


def _pick_platform(index: dict, what: str) -> dict:
    """A manifest list / OCI index resolved to this host's platform."""
    osname, arch = host_platform()
    for d in index.get("manifests") or []:
        p = d.get("platform") or {}
        if p.get("os") == osname and p.get("architecture") == arch:
            return d
    raise ArchiveError(f"{what}: no manifest for {osname}/{arch}")


def load(path: str, store: ImageStore, log=None) -> list[tuple[str, list[str]]]:
    """Load every image in the archive; returns [(image ID, [index keys])]."""
    src = open_source(path)
    try:
        with store.writing():
            if src.exists("manifest.json"):
                return _load_docker(src, store, log)
            if src.exists("index.json"):
                return _load_oci(src, store, log)
            raise ArchiveError(f"{path}: neither a docker save archive (manifest.json) nor an OCI image layout "
                               "(index.json)")  # fmt: skip
    finally:
        src.close()


def _keys(names) -> list[str]:
    from minirt.image import reference

    return [reference.parse(n).key() for n in names]


def _load_docker(src, store: ImageStore, log) -> list:
    manifest = _json(_read(src, "manifest.json"), "manifest.json")
    if not isinstance(manifest, list):
        raise ArchiveError("manifest.json: expected a list of images")
    out = []
    for entry in manifest:
        cfg_name = entry.get("Config") or ""
        # the config's file name is its digest (<hex>.json, or blobs/sha256/<hex>)
        stem = posixpath.basename(cfg_name).removesuffix(".json")
        expected = f"sha256:{stem}" if len(stem) == 64 else None
        config_bytes = _read(src, cfg_name, expected)
        config = _json(config_bytes, cfg_name)
        diffids = (config.get("rootfs") or {}).get("diff_ids") or []
        layer_names = entry.get("Layers") or []
        if len(diffids) != len(layer_names):
            raise ArchiveError(f"{cfg_name}: {len(diffids)} DiffIDs for {len(layer_names)} layers")
        for i, (name, diffid) in enumerate(zip(layer_names, diffids)):
            store.add_layer(_Opener(src, name), diffid, what=f"layer {i + 1} ({name})", log=log)
        keys = _keys(entry.get("RepoTags") or [])
        out.append((store.add_image(config_bytes, diffids, keys, expected), keys))
    return out


def _load_oci(src, store: ImageStore, log) -> list:
    if src.exists("oci-layout"):
        layout = _json(_read(src, "oci-layout"), "oci-layout")
        if layout.get("imageLayoutVersion") != "1.0.0":
            raise ArchiveError(f"oci-layout: unsupported imageLayoutVersion {layout.get('imageLayoutVersion')!r}")
    index = _json(_read(src, "index.json"), "index.json")
    out = []
    for desc in index.get("manifests") or []:
        ann = desc.get("annotations") or {}
        names = []
        # containerd writes the full name here; podman and skopeo a name or a bare tag
        full = ann.get("io.containerd.image.name") or ann.get("org.opencontainers.image.ref.name") or ""
        if full and (":" in full or "/" in full):
            names.append(full)
        out.append(_load_oci_manifest(src, store, desc, names, log))
    return out


def _blob_name(digest: str) -> str:
    return f"blobs/sha256/{hex_of(digest)}"


def _load_oci_manifest(src, store: ImageStore, desc: dict, names: list[str], log) -> tuple:
    data = _read(src, _blob_name(desc["digest"]), desc["digest"])
    manifest = _json(data, desc["digest"])
    media = manifest.get("mediaType") or desc.get("mediaType")
    if media in INDEX_TYPES or "manifests" in manifest:
        return _load_oci_manifest(src, store, _pick_platform(manifest, desc["digest"]), names, log)
    config_desc = manifest["config"]
    config_bytes = _read(src, _blob_name(config_desc["digest"]), config_desc["digest"])
    config = _json(config_bytes, "image config")
    diffids = (config.get("rootfs") or {}).get("diff_ids") or []
    layer_descs = manifest.get("layers") or []
    if len(diffids) != len(layer_descs):
        raise ArchiveError(f"{desc['digest']}: {len(diffids)} DiffIDs for {len(layer_descs)} layers")
    for i, (ld, diffid) in enumerate(zip(layer_descs, diffids)):
        opener = _Opener(src, _blob_name(ld["digest"]), ld["digest"], ld.get("size"))
        store.add_layer(opener, diffid, what=f"layer {i + 1} ({ld['digest']})", log=log)
    keys = _keys(names)
    return store.add_image(config_bytes, diffids, keys, config_desc["digest"]), keys
