"""minirt run [OPTIONS] IMAGE [COMMAND [ARG...]] or minirt run [OPTIONS] [-- COMMAND [ARG...]]:
create and start a container, wait for it (or, with -d, hand it to a supervisor and print its id).

A first operand before any `--` is an IMAGE from the image store (docs/images.md; the image
code is imported only then); after `--` the operands are the command, run on the built-in
busybox rootfs or --rootfs DIR, as before images existed."""

import os

from minirt import caps, explain, ids
from minirt.cgroups import flags as resource_flags
from minirt.cliparse import FLAG, LIST, VALUE, Option, parse
from minirt.config import ContainerConfig, Tmpfs, Volume, container_env, parse_env
from minirt.errors import ConfigError, NoSuchObject

OPTIONS = [
    Option(("--rm",), FLAG, "remove the container and its writable layer when it exits"),
    Option(("-d", "--detach"), FLAG, "run in the background under a supervisor; print the id"),
    Option(("--restart",), VALUE, "restart policy for -d: no, on-failure[:N], always", "POLICY"),
    Option(("--name",), VALUE, "container name (default: generated)", "NAME"),
    Option(("-h", "--hostname"), VALUE, "hostname (default: the short id)", "NAME"),
    Option(("--net", "--network"), VALUE, "bridge (default: the `minirt` network), none, or host", "MODE"),
    Option(("--network-alias",), LIST, "another name for the container on its user-defined network", "NAME"),
    Option(("-p", "--publish"), LIST, "publish a port: [hostip:][hostport:]containerport[/tcp|udp]", "SPEC"),
    Option(("--dns",), LIST, "nameserver for the container's resolv.conf (bridge networks)", "ADDRESS"),
    Option(("--rootfs",), VALUE, "root filesystem directory (default: the busybox rootfs)", "DIR"),
    Option(("--entrypoint",), VALUE, "overwrite the image's ENTRYPOINT (\"\": none; drops its CMD too)", "CMD"),
    Option(("-P", "--publish-all"), FLAG, "publish the image's exposed ports to ephemeral host ports"),
    Option(("--stop-signal",), VALUE, "signal `stop` sends first (default: the image's, else TERM)", "SIG"),
    Option(("-e", "--env"), LIST, "set NAME=VALUE, or copy NAME from the host", "NAME[=VALUE]"),
    Option(("-w", "--workdir"), VALUE, "working directory inside the container", "DIR"),
    Option(("-v", "--volume"), LIST, "bind mount a host path", "HOST:CTR[:ro]"),
    Option(("--tmpfs",), LIST, "mount a tmpfs (noexec,nosuid,nodev)", "PATH[:OPTS]"),
    Option(("--init",), FLAG, "run a minimal init as PID 1 that reaps zombies and forwards signals"),
    Option(("--cap-add",), LIST, "add a capability (or ALL)", "CAP"),
    Option(("--cap-drop",), LIST, "drop a capability (or ALL)", "CAP"),
    Option(("--privileged",), FLAG, "all capabilities and devices, no masked or read-only paths, writable /sys, "
           "no seccomp"),
    Option(("-u", "--user"), VALUE, "run as this user, from the container's /etc/passwd and /etc/group",
           "USER[:GROUP]"),
    Option(("--group-add",), LIST, "an additional group (a name from the container's /etc/group, or a gid)", "GROUP"),
    Option(("--read-only",), FLAG, "mount the container's root filesystem read-only"),
    Option(("--sysctl",), LIST, "a namespaced kernel parameter (net.*, kernel.shm*/msg*/sem, fs.mqueue.*)",
           "KEY=VALUE"),
    Option(("--ulimit",), LIST, "a resource limit set before exec (e.g. nofile=1024:2048)", "NAME=SOFT[:HARD]"),
    Option(("--device",), LIST, "give the container a host device node (and the devices cgroup's access)",
           "HOST[:CTR][:rwm]"),
    Option(("--security-opt",), LIST, "seccomp=unconfined, seccomp=PROFILE.json (Docker's format), "
           "or no-new-privileges (always on)", "OPT"),
    Option(("-i", "--interactive"), FLAG, "accepted for Docker compatibility: stdin always passes through"),
    Option(("-t", "--tty"), FLAG, "accepted for Docker compatibility: the terminal always passes through"),
    Option(("--userns",), VALUE, "user namespace: host (the default; overrides a configured remap)", "MODE"),
    Option(("--userns-remap",), VALUE, "map container root to NAME's /etc/subuid range (default: `minirt`, "
           "created on first use)", "NAME"),
    Option(("--uidmap",), LIST, "map container uids to host uids (podman's)", "CTR:HOST:SIZE"),
    Option(("--gidmap",), LIST, "map container gids to host gids (default: as --uidmap)", "CTR:HOST:SIZE"),
    Option(("--explain",), FLAG, "print each host change as the equivalent ip/nft/sysctl command"),
    Option(("--dry-run",), FLAG, "print the host changes --explain would print; make none, start nothing"),
    *resource_flags.OPTIONS,
    *resource_flags.RUN_ONLY,
]
USAGE = "minirt run [OPTIONS] IMAGE [COMMAND [ARG...]]\n       minirt run [OPTIONS] [-- COMMAND [ARG...]]"


def default_rootfs() -> str:
    """$MINIRT_ROOTFS, else the busybox rootfs `make rootfs` links to <prefix>/share/minirt/rootfs.

    The prefix is derived from where the package is installed (<prefix>/lib/pythonX.Y/
    site-packages/minirt), not sys.prefix, which the -S launcher leaves at the base Python.
    """
    env = os.environ.get("MINIRT_ROOTFS")
    if env:
        return env
    import minirt

    prefix = os.path.dirname(minirt.__file__).rsplit("/", 4)[0]
    return f"{prefix}/share/minirt/rootfs"


def _split_image(args: list[str], operands: list[str]) -> tuple[str | None, list[str]]:
    """(IMAGE, COMMAND): the operands began with `--` (today's meaning: a command on the
    default rootfs or --rootfs) or with an IMAGE (Docker's syntax)."""
    if not operands:
        return None, []
    start = len(args) - len(operands)
    if start > 0 and args[start - 1] == "--":
        return None, operands
    return operands[0], operands[1:]


def build_config(args: list[str]) -> ContainerConfig:
    opts, operands = parse(OPTIONS, args, prog=USAGE)
    image_ref, command = _split_image(args, operands)
    image = None
    if image_ref is not None:
        if opts["rootfs"]:
            raise ConfigError("conflicting options: --rootfs and an IMAGE (give one)")
        from minirt.image import config as imgconfig

        image = imgconfig.for_run(image_ref, command, opts["entrypoint"])
    cid = ids.new_id()
    net = opts["network"] or "bridge"  # Docker's default
    network = None
    net_pid = None
    if net.startswith("container:"):
        # Docker's rules for --net container:NAME: the other container's network namespace,
        # hostname and /etc files; --hostname and --dns conflict with it.
        from minirt import liveness
        from minirt.state import Store

        if opts["hostname"]:
            raise ConfigError("conflicting options: hostname and the network mode")
        if opts["dns"]:
            raise ConfigError("conflicting options: dns and the network mode")
        if opts["publish"]:
            raise ConfigError("conflicting options: port publishing and the container type network mode")
        store = Store()
        target = store.load(store.resolve(net.split(":", 1)[1]))
        if not liveness.init_alive(target):
            raise ConfigError(f"cannot join the network of container {target['name']}: it is not running")
        net, net_pid = "container", target["pid"]
        opts["hostname"] = target["config"]["hostname"]
    elif net not in ("none", "host"):
        from minirt.net.network import DEFAULT_NETWORK

        network = DEFAULT_NETWORK if net in ("bridge", DEFAULT_NETWORK) else net
        net = "bridge"
    if opts["hostname"]:
        hostname = ids.check_hostname(opts["hostname"])
    else:
        hostname = os.uname().nodename if net == "host" else ids.short(cid)
    rootfs = opts["rootfs"]
    if image is not None:
        rootfs = image["lowerdirs"][0]
    elif rootfs is None:
        rootfs = default_rootfs()
        if not os.path.isdir(rootfs):
            raise ConfigError(f"rootfs {rootfs}: no such directory (build it with `make rootfs`, or pass --rootfs DIR)")
    cfg = ContainerConfig(
        id=cid,
        name=ids.check_name(opts["name"]) if opts["name"] else ids.generated_name(cid),
        rootfs=os.path.abspath(rootfs),
        argv=image["argv"] if image else ([opts["entrypoint"]] if opts["entrypoint"] else []) + (command or
                                                                                                   ["/bin/sh"]),
        hostname=hostname,
        env=container_env((image["env"] if image else []) + parse_env(opts["env"], os.environ), hostname,
                          os.isatty(0), os.environ.get("TERM"), home=not (opts["user"] or (image and image["user"]))),
        workdir=opts["workdir"] or (image and image["workdir"]) or "/",
        volumes=[Volume.parse(v) for v in opts["volume"]],
        tmpfs=[Tmpfs.parse(t) for t in opts["tmpfs"]],
        net=net,
        network=network,
        net_pid=net_pid,
        init=opts["init"],
        cap_add=opts["cap_add"],
        cap_drop=opts["cap_drop"],
        privileged=opts["privileged"],
        no_new_privs=True,
        rm=opts["rm"],
        dns=[_check_ip(a) for a in opts["dns"]],
        detach=opts["detach"],
        ports=_ports(opts["publish"] + (image["exposed"] if image and opts["publish_all"] else [])),
        image=image and image["record"],
        lowerdirs=image and image["lowerdirs"],
        stop_signal=opts["stop_signal"] or (image and image["stop_signal"]) or None,
        restart=opts["restart"] or "no",
        aliases=[ids.check_alias(a) for a in opts["network_alias"]],
        resources=resource_flags.resources(opts).to_dict() if resource_flags.given(opts) else {},
        oom_score_adj=_oom_score_adj(opts["oom_score_adj"]),
        **_cgroup(opts),
        **_security(opts, net),
        **_userns(opts),
        **security_opts(opts["security_opt"]),
    )
    if cfg.restart != "no":
        from minirt.process.supervisor import parse_restart

        parse_restart(cfg.restart)
        if not cfg.detach:
            raise ConfigError("--restart needs -d (the supervisor carries out the policy)")
        if cfg.rm:
            raise ConfigError("conflicting options: --restart and --rm")
    if image is not None:
        if not cfg.user and image["user"]:
            cfg.user = image["user"]
        if cfg.uidmap and len(cfg.lowerdirs) + len(cfg.volumes) > 250:
            # one idmapped mount per layer and volume, all passed in one SCM_RIGHTS message
            raise ConfigError(f"an image of {len(cfg.lowerdirs)} layers with a user namespace: at most 250 "
                              "layers and volumes together")  # fmt: skip
    cfg.caps = caps.resolve(cfg.cap_add, cfg.cap_drop, cfg.privileged, caps.supported_here())
    explain.enabled = opts["explain"]
    if opts["dry_run"]:
        explain.start_dry()
    return cfg


def _security(opts: dict, net: str) -> dict:
    """--user, --group-add, --read-only, --sysctl, --ulimit, --device: parsed and checked here,
    so a bad one exits 125 before anything is created. A user name can only be resolved inside
    the container's root (its /etc/passwd), by the init, still before the point of no return."""
    from minirt import secopts

    return {
        "user": opts["user"] or None,  # an image's User is applied in build_config
        "group_add": opts["group_add"],
        "read_only": opts["read_only"],
        "sysctls": secopts.sysctls(opts["sysctl"], net),
        "ulimits": secopts.ulimits(opts["ulimit"]),
        "devices": [secopts.device_info(secopts.parse_device(d)) for d in opts["device"]],
    }
def security_opts(given: list[str]) -> dict:
    """--security-opt, as Docker's CLI parses it (docker/cli opts parseSecurityOpts): KEY=VALUE,
    or the old KEY:VALUE, or a bare no-new-privileges. seccomp takes unconfined, builtin (the
    default profile) or a profile file, made absolute here (Docker reads it relative to the
    caller's directory); no-new-privileges is accepted because minirt always sets it. Returns
    the config fields: seccomp ("default", "unconfined" or a path) and security_opt (inspect's
    HostConfig.SecurityOpt: what was given, the path made absolute)."""
    from minirt.seccomp import DEFAULT, UNCONFINED

    mode, shown = DEFAULT, []
    for opt in given:
        opt = opt.strip()
        key, eq, value = opt.partition("=")
        if not eq and opt != "no-new-privileges":
            if ":" not in opt:
                raise ConfigError(f"Invalid --security-opt: {opt!r}")
            key, _, value = opt.partition(":")
        if key == "seccomp":
            if value == "unconfined":
                mode = UNCONFINED
            elif value == "builtin":
                mode = DEFAULT
            else:
                mode = os.path.abspath(value)
                if not os.path.isfile(mode):
                    raise ConfigError(f"opening seccomp profile ({value}) failed: no such file")
                value = mode
            shown.append(f"seccomp={value}")
        elif key == "no-new-privileges":
            if value not in ("", "true", "1"):
                raise ConfigError(f"--security-opt {opt}: minirt always sets no_new_privs (docs/security.md)")
            shown.append(opt)
        else:
            raise ConfigError(f"invalid --security-opt: {opt!r} (minirt knows seccomp=unconfined|builtin|PROFILE.json "
                              "and no-new-privileges)")  # fmt: skip
    return {"seccomp": mode, "security_opt": shown}


def _oom_score_adj(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        n = int(value)
    except ValueError:
        raise ConfigError(f'invalid argument "{value}" for "--oom-score-adj" flag: strconv.ParseInt: '
                          f'parsing "{value}": invalid syntax') from None  # fmt: skip
    if not -1000 <= n <= 1000:  # moby daemon_unix.go verifyPlatformContainerSettings
        raise ConfigError(f"Invalid value {n}, range for oom score adj is [-1000, 1000]")
    return n


def _cgroup(opts: dict) -> dict:
    """--cgroup-parent and --cgroupns (Docker's default: private on cgroup v2, host on v1).

    Only a --cgroup-parent given on the command line is stored: without one the container runs
    under $MINIRT_CONFIG's cgroup_parent (else /minirt), read again at each start, and inspect
    shows CgroupParent "" as Docker does when its daemon's --cgroup-parent (or /docker) applies.
    The configured parent is still validated here, so a bad one is refused before anything is made."""
    from minirt.cgroups import layout

    parent = layout.validate_parent(opts["cgroup_parent"]) if opts["cgroup_parent"] else None
    if parent is None:
        layout.configured_parent()
    ns = opts["cgroupns"]
    if ns is None:
        ns = "private" if layout.mode() == "unified" else "host"
    elif ns not in ("host", "private"):
        raise ConfigError(f"invalid cgroup namespace mode {ns!r}: host or private")
    return {"cgroup_parent": parent, "cgroupns": ns}


def _userns(opts: dict) -> dict:
    """--userns, --userns-remap, --uidmap/--gidmap, and $MINIRT_CONFIG's userns_remap (Docker's
    daemon-wide userns-remap, which --userns=host turns off for one container). The maps are
    stored in the record, so `start` and `exec` use the ones the container was created with."""
    mode = opts["userns"]
    if mode not in (None, "", "host"):
        raise ConfigError(f"invalid user namespace mode {mode!r}: host (or --uidmap/--userns-remap)")
    explicit = opts["uidmap"] or opts["gidmap"]
    if mode == "host":
        if explicit or opts["userns_remap"]:
            raise ConfigError("conflicting options: --userns=host and --uidmap/--gidmap/--userns-remap")
        return {"userns": "host", "uidmap": None, "gidmap": None}
    if explicit:
        from minirt import userns

        if opts["userns_remap"]:
            raise ConfigError("conflicting options: --userns-remap and --uidmap/--gidmap")
        uidmap = userns.check_maps([userns.parse_map(s, "--uidmap") for s in opts["uidmap"]], "--uidmap")
        gidmap = [userns.parse_map(s, "--gidmap") for s in opts["gidmap"]] if opts["gidmap"] else uidmap
        return {"userns": "", "uidmap": uidmap, "gidmap": userns.check_maps(gidmap, "--gidmap")}
    remap = opts["userns_remap"]
    host_cfg = None
    if remap is None:
        from minirt.config import host_config

        host_cfg = host_config()
        remap = host_cfg.get("userns_remap")
    if not remap:
        return {"userns": "", "uidmap": None, "gidmap": None}
    from minirt import userns
    from minirt.config import host_config

    uidmap, gidmap = userns.remap(remap, host_config() if host_cfg is None else host_cfg)
    return {"userns": "", "uidmap": uidmap, "gidmap": gidmap}


def _ports(specs: list[str]) -> list:
    if not specs:
        return []
    from minirt.net.ports import parse

    return [m for spec in specs for m in parse(spec)]


def _check_ip(addr: str) -> str:
    from minirt.net import inet

    try:
        inet.parse4(addr)
    except ValueError:
        raise ConfigError(f"dns {addr!r}: not an IPv4 address") from None
    return addr


def main(args: list[str]) -> int:
    cfg = build_config(args)
    if os.geteuid() != 0:
        raise ConfigError("must run as root (creating namespaces needs CAP_SYS_ADMIN)")
    cfg.validate()
    from minirt import runtime
    from minirt.state import Store

    store = Store()
    if cfg.net == "bridge":
        from minirt.net import network

        if cfg.network != network.DEFAULT_NETWORK and network.load(store.root, cfg.network) is None:
            raise NoSuchObject(f"network {cfg.network!r}: no such network (create it with `minirt network create`)")
    if explain.dry:
        return runtime.dry_run(cfg, store)
    if cfg.detach:
        from minirt.process.supervisor import run_detached

        return run_detached(cfg, store)
    return runtime.run(cfg, store)
