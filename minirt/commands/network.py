"""minirt network create | ls | inspect | connect | disconnect | reload | rm | graph: the
bridge networks, their host side, the networks of a running container, and a picture of it all."""

import os
import sys

from minirt import explain
from minirt.cliparse import FLAG, LIST, VALUE, Option, parse
from minirt.errors import ConfigError
from minirt.state import root_dir

EXPLAIN = Option(("--explain",), FLAG, "print each host change as the equivalent ip/nft command")
DRY_RUN = Option(("--dry-run",), FLAG, "print the changes --explain would print; make none")

# One option table per subcommand, as `docker network SUBCOMMAND` has: a flag of another
# subcommand is refused (`network ls --internal`: unknown flag), not silently ignored.
# sub: (usage line, what it does, options)
SUBCOMMANDS = {
    "ls": ("minirt network ls [OPTIONS]", "list networks",
           [Option(("-q", "--quiet"), FLAG, "only names")]),
    "create": ("minirt network create [OPTIONS] NETWORK", "create a bridge network", [
        EXPLAIN, DRY_RUN,
        Option(("--subnet",), LIST, "the IPv4 subnet (default: a free one from Docker's pools); "
               "once more for the IPv6 one", "CIDR"),
        Option(("--gateway",), LIST, "the bridge's address (default: the first one); once per family", "ADDRESS"),
        Option(("--ipv6",), FLAG, "dual-stack (IPv6 subnet: the --subnet given, or a ULA /64)"),
        Option(("--internal",), FLAG, "no route out, no masquerade"),
        Option(("-o", "--opt"), LIST, "driver option, e.g. com.docker.network.bridge.enable_icc=false", "KEY=VALUE"),
    ]),
    "inspect": ("minirt network inspect NETWORK [NETWORK...]", "Docker-shaped JSON of networks", []),
    "reload": ("minirt network reload [OPTIONS]", "rebuild every network's bridge and rules from state",
               [EXPLAIN, DRY_RUN]),
    "rm": ("minirt network rm [OPTIONS] NETWORK [NETWORK...]", "remove networks", [EXPLAIN, DRY_RUN]),
    "connect": ("minirt network connect [OPTIONS] NETWORK CONTAINER", "connect a running container", [
        EXPLAIN, DRY_RUN, Option(("--alias",), LIST, "a network-scoped alias for the container", "NAME"),
    ]),
    "disconnect": ("minirt network disconnect [OPTIONS] NETWORK CONTAINER", "disconnect a container", [
        EXPLAIN, Option(("-f", "--force"), FLAG, "also when the network is gone"),
    ]),
    "graph": ("minirt network graph [OPTIONS] [NETWORK...]",
              "the host's networking as the kernel sees it, checked against minirt's records", [
        Option(("-o", "--output"), VALUE, "write a picture instead of text: FILE.svg (minirt's own), "
               "or FILE.png (needs cairosvg or Graphviz)", "FILE"),
    ]),
}  # fmt: skip
SUB_ALIASES = {"list": "ls", "remove": "rm"}  # docker's aliases
USAGE = ("Usage: minirt network COMMAND\n\nCommands:\n"
         + "".join(f"  {sub:<11} {what}\n" for sub, (_, what, _) in SUBCOMMANDS.items())
         + "\nRun `minirt network COMMAND --help` for a command's options.\n")  # fmt: skip

# `docker network create -o` keys minirt understands (the short form is minirt's own)
ICC_KEYS = ("com.docker.network.bridge.enable_icc", "icc")


def driver_options(opts: list[str]) -> dict:
    """-o KEY=VALUE list -> {"icc": bool}; unknown keys are refused rather than ignored."""
    out = {"icc": True}
    for item in opts:
        key, eq, value = item.partition("=")
        if not eq:
            raise ConfigError(f"network create: option {item!r}: expected KEY=VALUE")
        if key in ICC_KEYS:
            if value.lower() not in ("true", "false"):
                raise ConfigError(f"network create: option {key}: expected true or false, got {value!r}")
            out["icc"] = value.lower() == "true"
        else:
            raise ConfigError(f"network create: unknown driver option {key!r} (known: {ICC_KEYS[0]})")
    return out


def main(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write(USAGE)
        return 0
    sub, rest = SUB_ALIASES.get(args[0], args[0]), args[1:]
    if sub not in SUBCOMMANDS:
        raise ConfigError(f"network: unknown subcommand {sub!r} ({', '.join(SUBCOMMANDS)})")
    prog, _, options = SUBCOMMANDS[sub]
    opts, operands = parse(options, rest, stop_at_operand=False, prog=prog)
    explain.enabled = opts.get("explain", False)
    if opts.get("dry_run"):
        explain.start_dry()  # the plan on stderr, as --explain prints it; nothing on stdout
    from minirt.net import network

    root = root_dir()
    if sub in ("ls", "list"):
        nets = network.list_networks(root)
        if opts["quiet"]:
            for n in nets:
                print(n.name)
            return 0
        print(f"{'NAME':<16} {'DRIVER':<8} {'BRIDGE':<16} {'SUBNET':<20} {'GATEWAY':<16} MTU")
        for n in nets:
            print(f"{n.name:<16} {'bridge':<8} {n.bridge:<16} {n.subnet:<20} {n.gateway:<16} {n.mtu}")
            if n.subnet6:  # dual-stack: the IPv6 subnet on a line of its own, under the IPv4 one
                print(f"{'':<16} {'':<8} {'':<16} {n.subnet6:<20} {n.gateway6}")
        return 0
    if sub == "inspect":
        import json

        out = []
        for name in operands:
            n = network.load_existing(root, name)
            from minirt.net import ipam

            leases = ipam.LeaseStore(f"{n.dir}/leases").leases()
            out.append({"Name": n.name, "Driver": "bridge", "Internal": n.internal,
                        "IPAM": {"Config": [{"Subnet": n.subnet, "Gateway": n.gateway}]},
                        "Options": {"bridge": n.bridge, "mtu": n.mtu, "firewall": n.firewall,
                                    "com.docker.network.bridge.enable_icc": str(n.icc).lower()},
                        "Containers": {o["container"]: {"IPv4Address": f"{a}/{n.prefixlen}"} for a, o in leases.items()}})  # fmt: skip
            _inspect_ipv6(out[-1], n)
        print(json.dumps(out, indent=4))
        return 0
    if sub == "reload":
        # netavark's firewall-reload: rebuild minirt's rules from state (e.g. after someone ran
        # `nft flush ruleset`); every step is idempotent, so this also repairs a damaged bridge.
        if os.geteuid() != 0:
            raise ConfigError("must run as root")
        from minirt.net.netlink import Rtnl

        from minirt import reconcile
        from minirt.state import Store

        host = Rtnl.host()
        for n in network.list_networks(root):
            network.ensure_host_side(root, n.name, host)
            if not explain.dry:
                print(n.name)
        # then the live records' published ports, and away with what no live container owns
        store = Store(root)
        reconcile.republish(store)
        for f in reconcile.findings(store):
            f.fix()
        return 0
    if sub == "create":
        if len(operands) != 1:
            raise ConfigError("network create: give exactly one name")
        if os.geteuid() != 0:
            raise ConfigError("must run as root (creating a bridge needs CAP_NET_ADMIN)")
        from minirt.net.netlink import Rtnl

        driver = driver_options(opts["opt"])
        (subnet, subnet6), (gateway, gateway6) = _by_family(opts["subnet"], "--subnet"), _by_family(opts["gateway"], "--gateway")
        network.create(root, operands[0], Rtnl.host(), subnet, gateway, opts["internal"], driver["icc"],
                       ipv6=opts["ipv6"], subnet6=subnet6, gateway6=gateway6)  # fmt: skip
        if not explain.dry:
            print(operands[0])
        return 0
    if sub in ("connect", "disconnect"):
        if len(operands) != 2:
            raise ConfigError(f"network {sub}: give a network and a container")
        if os.geteuid() != 0:
            raise ConfigError("must run as root (creating a veth needs CAP_NET_ADMIN)")
        from minirt.net import connect
        from minirt.state import Store

        store = Store(root)
        if sub == "connect":
            connect.connect(store, operands[0], operands[1], opts["alias"])
        else:
            connect.disconnect(store, operands[0], operands[1], opts["force"])
        return 0
    if sub == "graph":
        return _graph(root, operands, opts["output"])
    if sub in ("rm", "remove"):
        if not operands:
            raise ConfigError("network rm: give at least one network name")
        if os.geteuid() != 0:
            raise ConfigError("must run as root (removing a bridge needs CAP_NET_ADMIN)")
        from minirt.net.netlink import Rtnl

        host = Rtnl.host()
        for name in operands:
            network.remove(root, name, host)
            if not explain.dry:
                print(name)
        return 0
    raise AssertionError(f"network {sub}: in SUBCOMMANDS but not dispatched")


def _graph(root: str, networks: list[str], output: str | None) -> int:
    """`network graph`: the tree on stdout, or -o FILE.svg / FILE.png (minirt/graph/). The
    disagreements are printed either way; finding some is not an error (exit 0): the command
    reports, `minirt gc` and `network reload` repair."""
    from minirt.graph import facts, model, text

    kind = (output or "").rpartition(".")[2].lower() if output else "text"
    if kind not in ("text", "svg", "png"):
        raise ConfigError(f"network graph: -o {output}: the file name must end in .svg or .png")
    if os.geteuid() != 0:
        raise ConfigError("must run as root (a container's netns and the nft maps are read)")
    g = model.build(facts.gather(root), networks)
    if kind == "text":
        sys.stdout.write(text.tree(g))
        return 0
    from minirt.graph import svg

    picture = svg.render(g)
    if kind == "png":
        from minirt.graph import png

        png.write_png(g, picture, output)
    else:
        with open(output, "w") as f:
            f.write(picture)
    counts = {k: len(g.by_kind(k)) for k in ("bridge", "container")}
    print(f"{output}: {counts['bridge']} bridge(s), {counts['container']} container(s), "
          f"{sum(e.kind == 'port' for e in g.edges)} published port(s)")  # fmt: skip
    print("\n".join(text.problems(g)))
    return 0


def _by_family(values: list[str] | None, option: str) -> tuple[str | None, str | None]:
    """--subnet/--gateway given up to twice, once per address family (Docker's dual-stack
    form): (IPv4 value, IPv6 value), either None."""
    v4 = [v for v in values or [] if ":" not in v]
    v6 = [v for v in values or [] if ":" in v]
    if len(v4) > 1 or len(v6) > 1:
        raise ConfigError(f"network create: {option} at most once per address family (IPv4, IPv6)")
    return (v4[0] if v4 else None), (v6[0] if v6 else None)


def _inspect_ipv6(entry: dict, n) -> None:
    """Docker's fields for a dual-stack network: EnableIPv6, a second IPAM Config entry, and
    each container's IPv6Address."""
    from minirt.net import ipam

    entry["EnableIPv6"] = bool(n.subnet6)
    if not n.subnet6:
        return
    entry["IPAM"]["Config"].append({"Subnet": n.subnet6, "Gateway": n.gateway6})
    for a, o in ipam.LeaseStore(f"{n.dir}/leases6").leases().items():
        entry["Containers"].setdefault(o["container"], {})["IPv6Address"] = f"{a}/{n.prefixlen6}"
