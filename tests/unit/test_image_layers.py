"""Layer unpacking with crafted tars: escapes refused with nothing stored, whiteouts and opaque
directories converted to overlayfs's format, links, metadata, compression, DiffIDs."""

import gzip
import io
import os
import shutil
import stat
import subprocess

import pytest

from minirt.image import layers
from minirt.image.layers import LayerError
from minirt.image.store import ImageStore
from tests.helpers.images import entry, layer, sha

pytestmark = pytest.mark.root  # chown, mknod of whiteouts and trusted.* xattrs are root's


def unpack(tmp_path, tar: bytes, **kw) -> str:
    dest = tmp_path / "layer"
    dest.mkdir()
    layers.unpack(io.BytesIO(tar), str(dest), **kw)
    return str(dest)


def store_add(tmp_path, tar: bytes, expected=None):
    store = ImageStore(str(tmp_path / "store"))
    store.ensure()
    return store, lambda: store.add_layer(lambda: io.BytesIO(tar), expected)


def assert_nothing_stored(store: ImageStore) -> None:
    assert os.listdir(store.layers) == [] and os.listdir(f"{store.root}/tmp") == []


ESCAPES = {
    "dotdot": ([entry("../evil", data=b"x")], "path escapes the layer"),
    "dotdot-deep": ([entry("a/../../evil", data=b"x")], "path escapes the layer"),
    "absolute": ([entry("/etc/evil", data=b"x")], "absolute path refused"),
    "abs-symlink-walk": ([entry("etc", "symlink", link="/etc"), entry("etc/evil", data=b"x")], "is a symlink"),
    "rel-symlink-walk": ([entry("up", "symlink", link="../.."), entry("up/evil", data=b"x")], "is a symlink"),
    "symlink-then-dir": ([entry("d", "symlink", link="/tmp"), entry("d/sub", "dir")], "is a symlink"),
    "hardlink-outside": ([entry("hl", "hardlink", link="../../etc/passwd")], "path escapes the layer"),
    "hardlink-absolute": ([entry("hl", "hardlink", link="/etc/passwd")], "absolute path refused"),
    "hardlink-missing": ([entry("hl", "hardlink", link="etc/passwd")], "does not exist in this layer"),
    "hardlink-via-symlink": ([entry("s", "symlink", link="/etc"), entry("hl", "hardlink", link="s/passwd")],
                             "is a symlink"),
    "whiteout-dotdot": ([entry(".wh...")], "malformed whiteout"),
    "overlay-xattr": ([entry("d", "dir", pax={"SCHILY.xattr.trusted.overlay.redirect": "/etc"})],
                      "overlayfs xattr trusted.overlay.redirect refused"),
}


@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_escapes_are_refused_and_nothing_is_stored(tmp_path, case):
    entries, message = ESCAPES[case]
    store, add = store_add(tmp_path, layer(entries))
    with pytest.raises(LayerError, match=message):
        add()
    assert_nothing_stored(store)
    assert not os.path.exists(tmp_path / "evil") and not os.path.exists("/evil")


def test_devices_only_when_allowed(tmp_path):
    tar = layer([entry("dev/null", "chr")])
    with pytest.raises(LayerError, match="device nodes need root"):
        unpack(tmp_path, tar, allow_devices=False)


def test_whiteouts_become_overlayfs_whiteouts_and_opaque_dirs(tmp_path):
    root = unpack(tmp_path, layer([entry("data/.wh.gone"), entry("opaque/.wh..wh..opq"),
                                   entry("opaque/kept", data=b"k")]))  # fmt: skip
    st = os.lstat(f"{root}/data/gone")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    assert not os.path.exists(f"{root}/data/.wh.gone")
    assert os.getxattr(f"{root}/opaque", "trusted.overlay.opaque") == b"y"
    assert os.getxattr(f"{root}/opaque", "user.overlay.opaque") == b"y"  # for `userxattr` mounts
    assert sorted(os.listdir(f"{root}/opaque")) == ["kept"]


def test_links_and_metadata_are_kept(tmp_path):
    root = unpack(tmp_path, layer([
        entry("bin", "dir", mode=0o750, uid=7, gid=8),
        entry("bin/tool", data=b"#!/bin/sh\n", mode=0o4755, uid=1000, gid=1000,
              pax={"SCHILY.xattr.user.note": "hi"}),
        entry("bin/again", "hardlink", link="bin/tool"),
        entry("bin/abs", "symlink", link="/etc/passwd"),
        entry("bin/fifo", "fifo"),
        entry("./bin/replaced", data=b"old"),
        entry("bin/replaced", data=b"new"),
    ]))  # fmt: skip
    tool = os.lstat(f"{root}/bin/tool")
    assert stat.S_IMODE(tool.st_mode) == 0o4755 and (tool.st_uid, tool.st_gid) == (1000, 1000)
    assert tool.st_mtime == 1_700_000_000
    assert os.lstat(f"{root}/bin/again").st_ino == tool.st_ino
    assert os.readlink(f"{root}/bin/abs") == "/etc/passwd"  # kept, never followed
    assert stat.S_ISFIFO(os.lstat(f"{root}/bin/fifo").st_mode)
    assert open(f"{root}/bin/replaced", "rb").read() == b"new"
    assert os.getxattr(f"{root}/bin/tool", "user.note") == b"hi"
    d = os.lstat(f"{root}/bin")
    assert stat.S_IMODE(d.st_mode) == 0o750 and (d.st_uid, d.st_gid) == (7, 8) and d.st_mtime == 1_700_000_000


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_diffid_is_the_uncompressed_digest_whatever_the_compression(tmp_path, compression):
    tar = layer([entry("a", data=b"a" * 5000)])
    data = tar
    if compression == "gzip":
        data = gzip.compress(tar)
    elif compression == "zstd":
        if not shutil.which("zstd"):
            pytest.fail("zstd is not installed (apt-get install zstd)")
        data = subprocess.run(["zstd", "-q", "-c"], input=tar, capture_output=True, check=True).stdout
    store, add = store_add(tmp_path, data, expected=sha(tar))
    assert add() == sha(tar)
    assert open(store.layer_root(sha(tar)) + "/a", "rb").read() == b"a" * 5000


def test_a_wrong_diffid_is_refused_and_nothing_stored(tmp_path):
    tar = layer([entry("a", data=b"a")])
    store, add = store_add(tmp_path, tar, expected=sha(b"something else"))
    with pytest.raises(LayerError, match="corrupt or tampered"):
        add()
    assert_nothing_stored(store)


def test_a_truncated_layer_is_refused(tmp_path):
    z = gzip.compress(layer([entry("a", data=os.urandom(100_000))]))
    store, add = store_add(tmp_path, z[: len(z) // 2])
    with pytest.raises(LayerError):
        add()
    assert_nothing_stored(store)


def test_a_layer_already_stored_is_not_unpacked_again(tmp_path):
    tar = layer([entry("a", data=b"a")])
    store, add = store_add(tmp_path, tar, expected=sha(tar))
    add()
    marker = store.layer_root(sha(tar)) + "/marker"
    open(marker, "w").close()
    assert add() == sha(tar) and os.path.exists(marker)
