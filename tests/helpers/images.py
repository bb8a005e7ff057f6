"""Test images built with Python's tarfile: layer tars, `docker save` archives and OCI image
layouts, from the busybox rootfs plus crafted layers (whiteouts, opaque directories, hard
links, symlinks, and hostile entries for the unpacker's refusals)."""

import gzip
import hashlib
import io
import json
import os
import tarfile

EPOCH = 1_700_000_000


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def entry(name: str, kind: str = "file", data: bytes = b"", mode: int | None = None, link: str = "",
          uid: int = 0, gid: int = 0, pax: dict | None = None):
    """(TarInfo, data) for layer(): kind is file, dir, symlink, hardlink, chr, fifo."""
    ti = tarfile.TarInfo(name)
    ti.mtime = EPOCH
    ti.uid, ti.gid = uid, gid
    types = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
             "hardlink": tarfile.LNKTYPE, "chr": tarfile.CHRTYPE, "fifo": tarfile.FIFOTYPE}  # fmt: skip
    ti.type = types[kind]
    ti.mode = mode if mode is not None else (0o755 if kind == "dir" else 0o644)
    ti.linkname = link
    if pax:
        ti.pax_headers = pax
    if kind == "file":
        ti.size = len(data)
    return ti, (data if kind == "file" else None)


def layer(entries) -> bytes:
    """An uncompressed layer tar (PAX format, so xattrs survive)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for ti, data in entries:
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def dir_layer(path: str) -> bytes:
    """A directory (the busybox rootfs) as a layer tar, owners as they are on disk."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(path, arcname=".")
    return buf.getvalue()


def config(layers: list[bytes], **cfg) -> bytes:
    return json.dumps({
        "architecture": "amd64", "os": "linux", "created": "2026-11-01T10:00:00Z",
        "config": cfg,
        "rootfs": {"type": "layers", "diff_ids": [sha(tar) for tar in layers]},
    }).encode()  # fmt: skip


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    ti = tarfile.TarInfo(name)
    ti.size, ti.mtime, ti.mode = len(data), EPOCH, 0o644
    tar.addfile(ti, io.BytesIO(data))


def docker_save(path: str, layers: list[bytes], cfg: bytes, tags: list[str]) -> str:
    """The classic `docker save` layout: <id>.json, <n>/layer.tar, manifest.json."""
    with tarfile.open(path, "w") as tar:
        cfg_name = sha(cfg)[7:] + ".json"
        _add(tar, cfg_name, cfg)
        names = []
        for i, data in enumerate(layers):
            names.append(f"{hashlib.sha256(data + bytes([i])).hexdigest()}/layer.tar")
            _add(tar, names[-1], data)
        _add(tar, "manifest.json", json.dumps([{"Config": cfg_name, "RepoTags": tags, "Layers": names}]).encode())
    return path


def oci_layout(dest: str, layers: list[bytes], cfg: bytes, ref: str, as_tar: bool = True,
               compress: bool = True, index: bool = False) -> str:
    """An OCI image layout (gzip layers by default), as a directory or a tar of one; with
    index=True the manifest sits behind a nested index (a platform list)."""
    blobs: dict[str, bytes] = {}

    def blob(data: bytes) -> dict:
        blobs[sha(data)] = data
        return {"digest": sha(data), "size": len(data)}

    descs = []
    for data in layers:
        z = gzip.compress(data, mtime=0) if compress else data
        media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else "")
        descs.append({"mediaType": media, **blob(z)})
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **blob(cfg)},
                           "layers": descs}).encode()  # fmt: skip
    mdesc = {"mediaType": "application/vnd.oci.image.manifest.v1+json", **blob(manifest)}
    if index:
        nested = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [
            {**mdesc, "platform": {"os": "linux", "architecture": "s390x"}},
            {**mdesc, "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()  # fmt: skip
        mdesc = {"mediaType": "application/vnd.oci.image.index.v1+json", **blob(nested)}
    top = json.dumps({"schemaVersion": 2, "manifests": [
        {**mdesc, "annotations": {"org.opencontainers.image.ref.name": ref}}]}).encode()  # fmt: skip
    files = {"oci-layout": b'{"imageLayoutVersion":"1.0.0"}', "index.json": top,
             **{f"blobs/sha256/{d[7:]}": b for d, b in blobs.items()}}  # fmt: skip
    if as_tar:
        with tarfile.open(dest, "w") as tar:
            for name, data in files.items():
                _add(tar, name, data)
    else:
        for name, data in files.items():
            os.makedirs(os.path.dirname(f"{dest}/{name}"), exist_ok=True)
            with open(f"{dest}/{name}", "wb") as f:
                f.write(data)
    return dest
