"""Image names and the image config applied to a run, as Docker does."""

import pytest

from minirt.commands.images import human_ago, human_size
from minirt.errors import ConfigError
from minirt.image import config, reference


@pytest.mark.parametrize("text,key,shown", [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/me/app", "docker.io/me/app:latest", "me/app:latest"),
    ("me/app:v1", "docker.io/me/app:v1", "me/app:v1"),
    ("minirt/busybox", "docker.io/minirt/busybox:latest", "minirt/busybox:latest"),
    ("localhost/app", "localhost/app:latest", "localhost/app:latest"),
    ("localhost:5000/a/b:t", "localhost:5000/a/b:t", "localhost:5000/a/b:t"),
    ("quay.io/x/y@sha256:" + "a" * 64, "quay.io/x/y@sha256:" + "a" * 64, "quay.io/x/y@sha256:" + "a" * 64),
])  # fmt: skip
def test_reference_normalisation(text, key, shown):
    ref = reference.parse(text)
    assert ref.key() == key and str(ref) == shown


@pytest.mark.parametrize("text", ["", "UPPER", "a:b:c", "a@sha256:12", "a//b", "-a", "a:" + "t" * 200])
def test_bad_references(text):
    with pytest.raises(ConfigError, match="invalid reference format"):
        reference.parse(text)


IMG = {"Entrypoint": ["/ep"], "Cmd": ["c1", "c2"]}


@pytest.mark.parametrize("cfg,cmd,ep,argv", [
    (IMG, [], None, ["/ep", "c1", "c2"]),            # Entrypoint + Cmd
    (IMG, ["x"], None, ["/ep", "x"]),                # COMMAND replaces Cmd only
    (IMG, [], "/other", ["/other"]),                 # --entrypoint drops Cmd too
    (IMG, ["x"], "/other", ["/other", "x"]),
    (IMG, ["sh"], "", ["sh"]),                       # --entrypoint "": none
    ({"Cmd": ["sh"]}, [], None, ["sh"]),
])  # fmt: skip
def test_entrypoint_and_cmd(cfg, cmd, ep, argv):
    assert config.command(cfg, cmd, ep) == argv


@pytest.mark.parametrize("cfg,cmd,ep", [({}, [], None), (IMG, [], "")])
def test_no_command(cfg, cmd, ep):
    with pytest.raises(ConfigError, match="No command specified"):
        config.command(cfg, cmd, ep)


def test_import_changes():
    cfg = config.apply_changes({}, ['CMD ["/bin/sh"]', "ENTRYPOINT echo hi", "ENV A=1 B=2", "ENV C 3 4",
                                    "WORKDIR /srv", "USER app", "EXPOSE 80 53/udp", "LABEL a=b",
                                    "STOPSIGNAL SIGUSR1"])  # fmt: skip
    assert cfg == {"Cmd": ["/bin/sh"], "Entrypoint": ["/bin/sh", "-c", "echo hi"], "Env": ["A=1", "B=2", "C=3 4"],
                   "WorkingDir": "/srv", "User": "app", "ExposedPorts": {"80/tcp": {}, "53/udp": {}},
                   "Labels": {"a": "b"}, "StopSignal": "SIGUSR1"}  # fmt: skip
    with pytest.raises(ConfigError, match="not a valid change command"):
        config.apply_changes({}, ["RUN rm -rf /"])


def test_images_columns_units():
    assert [human_size(n) for n in (0, 999, 1000, 1_980_000, 4_260_000_000)] == ["0B", "999B", "1kB", "1.98MB",
                                                                                  "4.26GB"]  # fmt: skip
    now = 1_800_000_000
    import time

    iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 3 * 7 * 86400))
    assert human_ago(iso, now) == "3 weeks ago"


@pytest.mark.parametrize("text", ["a__b", "a.b", "a---b", "registry.example.com:5000/x", "[::1]:5000/x",
                                  "a_b/c-d:T.a-g_1"])  # fmt: skip
def test_good_references(text):
    reference.parse(text)


@pytest.mark.parametrize("text", ["a_-b", "a..b", "ex.com:port/x", "[zz]/x", "a/-b", "-h.com/x", "a:.tag"])
def test_more_bad_references(text):
    with pytest.raises(ConfigError, match="invalid reference format"):
        reference.parse(text)


def test_plain_http_only_for_loopback_or_insecure_registries():
    """Not loopback and not --insecure-registry: HTTPS only (Docker's default)."""
    from minirt.image.registry import Client, is_loopback

    assert Client("registry.example.com:5000", "x").scheme == "https"
    assert Client("registry.example.com:5000", "x", insecure=True).scheme is None  # https, then http
    assert Client("localhost:5000", "x").scheme is None
    assert [is_loopback(h) for h in ("localhost:5000", "127.0.0.1", "[::1]:5000", "10.0.0.1:5000")] == [
        True, True, True, False]  # fmt: skip


def test_auth_challenge_parsing():
    from minirt.image.registry import _challenge

    assert _challenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
                      'scope="repository:library/busybox:pull"') == ("bearer", {
        "realm": "https://auth.docker.io/token", "service": "registry.docker.io",
        "scope": "repository:library/busybox:pull"})  # fmt: skip
    assert _challenge('Basic realm="basic-realm"') == ("basic", {"realm": "basic-realm"})


def test_docker_credentials(tmp_path, monkeypatch):
    import base64
    import json

    from minirt.image.registry import docker_credentials

    (tmp_path / "config.json").write_text(json.dumps({"auths": {
        "https://index.docker.io/v1/": {"auth": base64.b64encode(b"me:secret").decode()},
        "localhost:5000": {"auth": base64.b64encode(b"u:p:with:colons").decode()}}}))  # fmt: skip
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    assert docker_credentials("docker.io") == ("me", "secret")
    assert docker_credentials("localhost:5000") == ("u", "p:with:colons")
    assert docker_credentials("quay.io") is None
