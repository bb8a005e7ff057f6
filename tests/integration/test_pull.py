"""`minirt pull` against Debian's docker-registry, started by each test on loopback inside its
throwaway namespace (tests/helpers/registry.py), behind a front that hands out bearer tokens
and can drop a connection mid-layer. Images are built here from the busybox rootfs."""

import os

import pytest

from tests.helpers import images as I
from tests.helpers.registry import PROXY_PORT, Registry
from tests.integration.test_images import store_layers
from tests.integration.test_lifecycle import ok

NAME = f"localhost:{PROXY_PORT}/test/app"


@pytest.fixture(scope="module")
def image(tmp_path_factory):
    from tests.conftest import ROOTFS

    base = I.dir_layer(ROOTFS)
    l2 = I.layer([I.entry("data/gone", data=b"gone\n"), I.entry("data/big", data=os.urandom(300_000))])
    l3 = I.layer([I.entry("data/.wh.gone"), I.entry("srv/hello", data=b"pulled\n")])
    layers = [base, l2, l3]
    return layers, I.config(layers, Cmd=["cat", "/srv/hello"], WorkingDir="/srv")


@pytest.fixture
def registry(host_ns, tmp_path, request):
    marker = request.node.get_closest_marker("registry")
    r = Registry(host_ns, str(tmp_path / "registry"), **(marker.kwargs if marker else {}))
    yield r
    r.close()


def test_pull_by_tag_with_a_bearer_token_then_run(minirt, registry, image):
    layers, cfg = image
    registry.push("test/app", "v1", layers, cfg)
    r = minirt("pull", f"{NAME}:v1")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "v1: Pulling from test/app"
    assert sum(line.endswith(": Pull complete") for line in lines) == 3
    assert lines[-1] == f"Status: Downloaded newer image for {NAME}:v1"
    kinds = [q["kind"] for q in registry.requests()]
    assert "challenge" in kinds and "token" in kinds  # the 401 was answered with a token
    assert ok(minirt("run", "--rm", "--net", "none", f"{NAME}:v1")) == "pulled\n"
    assert ok(minirt("run", "--rm", "--net", "none", f"{NAME}:v1", "ls", "/data")) == "big\n"  # whiteout applied
    again = ok(minirt("pull", f"{NAME}:v1")).splitlines()
    assert sum(line.endswith(": Already exists") for line in again) == 3
    assert again[-1] == f"Status: Image is up to date for {NAME}:v1"


def test_pull_by_digest_and_a_manifest_list(minirt, registry, image):
    layers, cfg = image
    digest = registry.push("test/multi", "latest", layers, cfg, index=True)  # s390x and amd64 entries
    ref = f"localhost:{PROXY_PORT}/test/multi@{digest}"
    r = minirt("pull", ref)
    assert r.returncode == 0, r.stderr
    assert f"Digest: {digest}" in r.stdout
    assert ok(minirt("run", "--rm", "--net", "none", ref)) == "pulled\n"
    ok(minirt("pull", "-q", f"localhost:{PROXY_PORT}/test/multi"))  # by tag: the index, resolved to amd64
    assert len(store_layers(minirt)) == 3


def test_a_tampered_blob_is_refused_and_nothing_is_stored(minirt, registry, image):
    layers, cfg = image
    registry.push("test/app", "v1", layers, cfg)
    import gzip

    top = I.sha(gzip.compress(layers[2], mtime=0))
    path = registry.blob_path(top)
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF
    open(path, "wb").write(bytes(data))
    r = minirt("pull", f"{NAME}:v1")
    assert r.returncode == 125
    assert "corrupt or tampered" in r.stderr and r.stderr.count("\n") == 1
    assert ok(minirt("images", "-q")) == ""
    assert I.sha(layers[2])[7:] not in store_layers(minirt)
    assert os.listdir(f"{minirt.env['MINIRT_STORE']}/tmp") == []


@pytest.mark.registry(drop_after=150_000)
def test_a_connection_dropped_mid_layer_is_resumed(minirt, registry, image):
    layers, cfg = image
    registry.push("test/app", "v1", layers, cfg)
    r = minirt("pull", f"{NAME}:v1")
    assert r.returncode == 0, r.stderr
    reqs = registry.requests()
    dropped = [q for q in reqs if q["kind"] == "dropped"]
    assert len(dropped) == 1
    resumed = [q for q in reqs if q["kind"] == "get" and q["path"] == dropped[0]["path"] and q["range"]]
    assert resumed and resumed[0]["range"].startswith("bytes=")
    assert ok(minirt("run", "--rm", "--net", "none", f"{NAME}:v1")) == "pulled\n"


def test_two_concurrent_pulls_share_the_layers(minirt, registry, image):
    layers, cfg = image
    registry.push("test/app", "v1", layers, cfg)
    procs = [minirt.popen("pull", f"{NAME}:v1") for _ in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sum(o[0].count(": Pull complete") for o in outs) == 3  # each layer fetched once
    assert sum(o[0].count(": Already exists") for o in outs) == 3
    assert len(store_layers(minirt)) == 3

