"""An image's config (image-spec config.md: the `config` object) applied to a run the way
Docker applies it (moby daemon/commit.go merge, docs "Overriding image defaults"):

- Entrypoint and Cmd: with `--entrypoint` given, the image's Entrypoint *and* Cmd are
  dropped (docker run reference: "passing --entrypoint clears out any default command"),
  and `--entrypoint ""` leaves no entrypoint at all; otherwise COMMAND replaces Cmd only.
  argv = entrypoint + (COMMAND or Cmd); empty -> "No command specified".
- Env: the image's, then -e on top (same name: -e wins); PATH comes from the image when it
  sets one, Docker's default otherwise.
- WorkingDir: -w, else the image's, else /.
- User: -u, else the image's.
- StopSignal: kept in the container's config; `stop` without -s sends it.
- ExposedPorts: published to ephemeral host ports with -P.
- Labels: inspect's Config.Labels.
"""

from minirt.errors import ConfigError


def image_config(record: dict) -> dict:
    return (record.get("config") or {}).get("config") or {}


def command(cfg: dict, user_cmd: list[str], entrypoint: str | None) -> list[str]:
    if entrypoint is not None:
        ep = [entrypoint] if entrypoint else []
        argv = ep + user_cmd
    else:
        argv = list(cfg.get("Entrypoint") or []) + (user_cmd or list(cfg.get("Cmd") or []))
    if not argv:
        raise ConfigError("No command specified")
    return argv


def env(cfg: dict) -> list[str]:
    return list(cfg.get("Env") or [])


def exposed_ports(cfg: dict) -> list[str]:
    """"80/tcp" keys as `-p` specs for -P: each to an ephemeral host port."""
    return sorted((cfg.get("ExposedPorts") or {}).keys())


# -- import -c/--change: the Dockerfile instructions Docker's import accepts ---------------

CHANGE_KEYS = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "STOPSIGNAL", "USER", "WORKDIR")


def _exec_form(value: str) -> list[str]:
    value = value.strip()
    if value.startswith("["):
        import json

        try:
            argv = json.loads(value)
        except ValueError:
            argv = None
        if isinstance(argv, list) and all(isinstance(a, str) for a in argv):
            return argv
    return ["/bin/sh", "-c", value]  # shell form, as the Dockerfile's


def _pairs(value: str) -> list[tuple[str, str]]:
    """ENV/LABEL: `K=V K2="v 2"`, or the old `K V` form."""
    import shlex

    words = shlex.split(value)
    if words and "=" not in words[0]:
        k, _, v = value.strip().partition(" ")
        return [(k, v.strip())]
    out = []
    for w in words:
        k, eq, v = w.partition("=")
        if not eq:
            raise ConfigError(f"--change: {value!r}: expected KEY=VALUE")
        out.append((k, v))
    return out


def apply_changes(cfg: dict, changes: list[str]) -> dict:
    cfg = dict(cfg)
    for change in changes:
        word, _, value = change.strip().partition(" ")
        key = word.upper()
        if key not in CHANGE_KEYS:
            raise ConfigError(f"--change: {word} is not a valid change command (one of {', '.join(CHANGE_KEYS)})")
        if key in ("CMD", "ENTRYPOINT"):
            cfg[key.title()] = _exec_form(value)
        elif key == "ENV":
            env_map = dict(e.partition("=")[::2] for e in cfg.get("Env") or [])
            env_map.update(_pairs(value))
            cfg["Env"] = [f"{k}={v}" for k, v in env_map.items()]
        elif key == "LABEL":
            cfg["Labels"] = {**(cfg.get("Labels") or {}), **dict(_pairs(value))}
        elif key == "EXPOSE":
            ports = dict(cfg.get("ExposedPorts") or {})
            for p in value.split():
                ports[p if "/" in p else f"{p}/tcp"] = {}
            cfg["ExposedPorts"] = ports
        elif key == "STOPSIGNAL":
            cfg["StopSignal"] = value.strip()
        elif key == "USER":
            cfg["User"] = value.strip()
        elif key == "WORKDIR":
            cfg["WorkingDir"] = value.strip()
    return cfg


def for_run(text: str, user_cmd: list[str], entrypoint: str | None) -> dict:
    """What `minirt run IMAGE ...` takes from the store: the argv, env, workdir, user, stop
    signal, exposed ports, and the layers as overlay lowerdirs (top layer first, as
    overlayfs's lowerdir lists them). `record` goes into the container's config: `rmi`
    refuses an image a container names, and `gc` keeps the layers it names."""
    from minirt.errors import NoSuchObject
    from minirt.image.store import ImageStore

    store = ImageStore()
    try:
        image_id, key = store.lookup(text)
    except NoSuchObject as e:
        raise NoSuchObject(f"{e} (minirt has no `pull` yet: `minirt load -i FILE` or `minirt import`)") from None
    rec = store.image(image_id)
    cfg = image_config(rec)
    lowerdirs = [store.layer_root(d) for d in reversed(rec["layers"])]
    if not lowerdirs:
        raise ConfigError(f"image {text}: has no layers")
    return {
        "argv": command(cfg, user_cmd, entrypoint),
        "env": env(cfg),
        "workdir": cfg.get("WorkingDir") or "",
        "user": cfg.get("User") or "",
        "stop_signal": cfg.get("StopSignal") or "",
        "exposed": exposed_ports(cfg),
        "lowerdirs": lowerdirs,
        "record": {
            "name": text,
            "id": image_id,
            "layers": rec["layers"],
            "store": store.root,
            "labels": cfg.get("Labels") or {},
            "entrypoint": (([entrypoint] if entrypoint else []) if entrypoint is not None
                           else cfg.get("Entrypoint")) or None,
        },  # fmt: skip
    }
