"""Images on the real kernel: `load` of docker-save and OCI layouts built here from the
busybox rootfs, `import`, `run IMAGE` (layers as overlay lowerdirs, the image config applied
as Docker does), `rmi` refusals, `gc`, unsafe layers refused, concurrent loads sharing layers.

Every test has its own image store (the `minirt` fixture's MINIRT_STORE)."""

import json
import os

import pytest

from tests.conftest import ROOTFS
from tests.helpers import images as I
from tests.integration.test_lifecycle import ok, wait_for

APP = "test/app:v1"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Three layers: the busybox rootfs; files, a symlink, a hard link; a whiteout and an
    opaque directory over them. One config with Entrypoint/Cmd/Env/WorkingDir/User/Labels."""
    d = tmp_path_factory.mktemp("images")
    base = I.dir_layer(ROOTFS)
    l2 = I.layer([I.entry("data", "dir"), I.entry("data/keep", data=b"keep\n"), I.entry("data/gone", data=b"gone\n"),
                  I.entry("opaque", "dir"), I.entry("opaque/lower", data=b"lower\n"),
                  I.entry("srv/app.txt", data=b"hello\n"), I.entry("srv/link", "symlink", link="app.txt"),
                  I.entry("srv/hard", "hardlink", link="srv/app.txt"),
                  I.entry("bin/stopme", data=b"#!/bin/sh\ntrap 'echo got USR1; exit 0' USR1\n"
                          b"echo ready\nwhile :; do sleep 0.1; done\n", mode=0o755)])  # fmt: skip
    l3 = I.layer([I.entry("data/.wh.gone"), I.entry("opaque/.wh..wh..opq"), I.entry("opaque/upper", data=b"upper\n")])
    layers = [base, l2, l3]
    cfg = I.config(layers, Entrypoint=["/bin/echo", "ep"], Cmd=["default"], Env=["FOO=image", "BAR=image"],
                   WorkingDir="/srv", User="app", Labels={"org.example": "yes"}, StopSignal="SIGUSR1",
                   ExposedPorts={"80/tcp": {}})  # fmt: skip
    return {
        "dir": d,
        "layers": layers,
        "save": I.docker_save(str(d / "save.tar"), layers, cfg, [APP]),
        "oci_tar": I.oci_layout(str(d / "oci.tar"), layers, cfg, "localhost/test/oci:v2", index=True),
        "oci_dir": I.oci_layout(str(d / "ocidir"), layers, cfg, "localhost/test/ocidir:v3", as_tar=False),
        "rootfs_tar": _tar_of(ROOTFS, str(d / "rootfs.tar")),
    }


def _tar_of(path: str, dest: str) -> str:
    with open(dest, "wb") as f:
        f.write(I.dir_layer(path))
    return dest


def store_layers(minirt) -> list[str]:
    return sorted(os.listdir(f"{minirt.env['MINIRT_STORE']}/layers"))


def run(minirt, *args, **kw):
    return minirt("run", "--rm", "--net", "none", *args, **kw)


def test_docker_save_loads_and_runs_with_the_image_config(minirt, built):
    r = ok(minirt("load", "-i", built["save"]))
    assert r.splitlines()[-1] == f"Loaded image: {APP}"
    assert len(store_layers(minirt)) == 3
    table = ok(minirt("images")).splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert table[1].split()[:2] == ["test/app", "v1"]
    # Entrypoint + Cmd; COMMAND replaces Cmd; --entrypoint drops both
    assert ok(run(minirt, APP)) == "ep default\n"
    assert ok(run(minirt, APP, "a", "b")) == "ep a b\n"
    assert ok(run(minirt, "--entrypoint", "/bin/echo", APP)) == "\n"
    r = run(minirt, "--entrypoint", "", APP)
    assert (r.returncode, r.stderr) == (125, "minirt: No command specified\n")
    # Env merged with -e, WorkingDir, User; whiteout, opaque dir, links through the overlay
    script = ('id; pwd; echo "$FOO $BAR $HOME"; ls /data; ls /opaque; readlink /srv/link; '
              'stat -c %i /srv/app.txt /srv/hard | uniq | wc -l')
    out = ok(run(minirt, "-e", "BAR=cli", "--entrypoint", "/bin/sh", APP, "-c", script)).splitlines()
    assert out[0].startswith("uid=1000(app) gid=1000(app)")
    assert out[1:] == ["/srv", "image cli /home/app", "keep", "upper", "app.txt", "1"]
    # -u and -w override the image's
    assert ok(run(minirt, "-u", "0", "-w", "/tmp", "--entrypoint", "sh", APP, "-c", "id -u; pwd")) == "0\n/tmp\n"


def test_oci_layouts_tar_and_directory_share_layers_with_docker_save(minirt, built):
    ok(minirt("load", "-i", built["save"]))
    assert ok(minirt("load", "-i", built["oci_tar"])) == "Loaded image: localhost/test/oci:v2\n"  # nested index
    assert ok(minirt("load", "-q", "-i", built["oci_dir"])) == ""
    assert len(store_layers(minirt)) == 3  # one config, one set of layers, three names
    assert len(set(ok(minirt("images", "-q")).split())) == 1
    assert ok(run(minirt, "--entrypoint", "cat", "localhost/test/ocidir:v3", "/opaque/upper")) == "upper\n"


def test_import_a_rootfs_tar_as_minirt_busybox(minirt, built):
    image_id = ok(minirt("import", "-c", 'CMD ["/bin/sh", "-c", "echo imported; cat /etc/issue | wc -l"]',
                         built["rootfs_tar"], "minirt/busybox")).strip()  # fmt: skip
    assert image_id.startswith("sha256:") and len(image_id) == 71
    assert ok(minirt("images", "--format", "json", "minirt/busybox")).count("\n") == 1
    assert ok(run(minirt, "minirt/busybox")).startswith("imported\n")
    assert ok(run(minirt, image_id[7:19], "echo", "by-id")) == "by-id\n"  # an ID prefix names it too


def test_rmi_is_refused_while_a_container_uses_the_image(minirt, built, uniq):
    ok(minirt("load", "-i", built["save"]))
    ok(minirt("run", "--net", "none", "--name", uniq, APP, "stopped"))  # an exited record
    r = minirt("rmi", APP)
    assert r.returncode == 1
    assert "(must force) - container" in r.stderr and "is using its referenced image" in r.stderr
    cid = ok(minirt("run", "-d", "--net", "none", "--entrypoint", "sleep", APP, "60")).strip()
    r = minirt("rmi", "-f", APP)
    assert r.returncode == 1 and "(cannot be forced) - image is being used by running container" in r.stderr
    ok(minirt("rm", "-f", cid, uniq))
    out = ok(minirt("rmi", APP)).splitlines()
    assert out[0] == f"Untagged: {APP}" and out[1].startswith("Deleted: sha256:")
    assert ok(minirt("images", "-q")) == ""
    assert sum("unused layer" in line for line in ok(minirt("gc")).splitlines()) == 3
    assert store_layers(minirt) == []


def test_rmi_force_keeps_the_layers_a_stopped_container_needs(minirt, built, uniq):
    ok(minirt("load", "-i", built["save"]))
    ok(minirt("run", "--net", "none", "--name", uniq, APP, "x"))
    ok(minirt("rmi", "-f", APP))
    ok(minirt("gc"))
    assert len(store_layers(minirt)) == 3  # the container still names them
    ok(minirt("start", uniq))  # and starts again on them
    wait_for(lambda: ok(minirt("logs", uniq)).count("ep x") == 1 and
             json.loads(ok(minirt("inspect", uniq)))[0]["State"]["Status"] == "exited", what="the restarted run")
    ok(minirt("rm", uniq))
    ok(minirt("gc"))
    assert store_layers(minirt) == []


def test_inspect_stop_signal_and_publish_all(minirt, built, uniq):
    ok(minirt("load", "-i", built["save"]))
    cid = ok(minirt("run", "-d", "-P", "--name", uniq, "--entrypoint", "/bin/stopme", APP)).strip()
    wait_for(lambda: "ready" in ok(minirt("logs", cid)), what="the container's output")
    doc = json.loads(ok(minirt("inspect", uniq)))[0]
    assert doc["Config"]["Image"] == APP and doc["Image"].startswith("sha256:")
    assert doc["Config"]["Labels"] == {"org.example": "yes"} and doc["Config"]["StopSignal"] == "SIGUSR1"
    [binding] = doc["NetworkSettings"]["Ports"]["80/tcp"]
    assert int(binding["HostPort"]) >= 1024
    ok(minirt("stop", uniq))  # the image's StopSignal, not TERM: the trap answers
    assert "got USR1" in ok(minirt("logs", cid))
    ok(minirt("rm", uniq))


@pytest.mark.parametrize("bad", ["dotdot", "abs-symlink"])
def test_an_escaping_layer_is_refused_and_nothing_is_stored(minirt, built, bad):
    evil = {"dotdot": [I.entry("../../../../tmp/escaped", data=b"x")],
            "abs-symlink": [I.entry("esc", "symlink", link="/tmp"), I.entry("esc/escaped", data=b"x")]}[bad]
    layers = [built["layers"][0], I.layer(evil)]
    path = I.docker_save(str(built["dir"] / f"evil-{bad}.tar"), layers, I.config(layers, Cmd=["true"]), ["evil:1"])
    r = minirt("load", "-i", path)
    assert r.returncode == 125
    assert r.stderr.startswith("minirt: layer entry ") and r.stderr.count("\n") == 1
    assert not os.path.exists("/tmp/escaped")
    store = minirt.env["MINIRT_STORE"]
    assert os.listdir(f"{store}/tmp") == [] and ok(minirt("images", "-q")) == ""
    assert len(store_layers(minirt)) == 1  # the good base layer only, unreferenced: gc's to take
    assert "unused layer" in ok(minirt("gc"))


def test_two_concurrent_loads_share_the_layers(minirt, built):
    procs = [minirt.popen("load", "-i", built["save"]) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert sum(o[0].count("Loading layer") for o in outs) == 3  # each layer unpacked once
    assert len(store_layers(minirt)) == 3 and os.listdir(f"{minirt.env['MINIRT_STORE']}/tmp") == []


@pytest.mark.parametrize("userns", [[], ["--uidmap", "0:100000:65536"]], ids=["host", "userns"])
def test_more_layers_than_one_mount_option_page(minirt, built, userns):
    """70 layers x 69 bytes of lowerdir > 4096: mounted with fsconfig's lowerdir+ instead (in
    a user namespace: 70 idmapped mounts, named lower/0..69, which fit in one page)."""
    layers = [built["layers"][0]] + [I.layer([I.entry(f"many/f{i:02}", data=b"%d\n" % i)]) for i in range(69)]
    path = I.docker_save(str(built["dir"] / "many.tar"), layers, I.config(layers, Cmd=["ls", "/many"]), ["many:1"])
    ok(minirt("load", "-q", "-i", path))
    assert ok(run(minirt, *userns, "many:1")).split() == [f"f{i:02}" for i in range(69)]


def test_gc_removes_partial_content(minirt, built):
    ok(minirt("load", "-i", built["save"]))
    store = minirt.env["MINIRT_STORE"]
    os.makedirs(f"{store}/tmp/0123abcd/root/etc")  # what a crash in mid-unpack leaves
    out = ok(minirt("gc"))
    assert "image store: partial content tmp/0123abcd" in out and "unused layer" not in out
    assert os.listdir(f"{store}/tmp") == [] and len(store_layers(minirt)) == 3


def test_load_and_import_read_stdin(minirt, built):
    with open(built["save"], "rb") as f:
        r = minirt("load", stdin=f)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[-1] == f"Loaded image: {APP}"
    with open(built["rootfs_tar"], "rb") as f:
        r = minirt("import", "-c", "ENTRYPOINT echo from-stdin", "-", "stdin/img", stdin=f)
    assert r.returncode == 0, r.stderr
    assert ok(run(minirt, "stdin/img")) == "from-stdin\n"
    assert os.listdir(f"{minirt.env['MINIRT_STORE']}/tmp") == []


def test_an_image_in_a_user_namespace(minirt, built):
    """Each layer is idmapped on its own (userns.detached_trees): image files owned by host
    root show as container root; the image's User (app, 1000) is host uid 101000."""
    ok(minirt("load", "-i", built["save"]))
    script = "id -u; cat /proc/self/uid_map; stat -c '%u %g' /srv/app.txt /bin/busybox; ls /data; ls /opaque"
    out = ok(run(minirt, "--uidmap", "0:100000:65536", "--entrypoint", "/bin/sh", APP, "-c", script)).split("\n")
    assert out[0] == "1000"
    assert out[1].split() == ["0", "100000", "65536"]
    assert out[2:6] == ["0 0", "0 0", "keep", "upper"]
