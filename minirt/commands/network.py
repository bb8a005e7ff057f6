"""minirt network ls | rm NAME: the bridge networks and their host side."""

import os
import sys

from minirt import explain
from minirt.cliparse import FLAG, Option, parse
from minirt.errors import ConfigError
from minirt.state import root_dir

OPTIONS = [
    Option(("--explain",), FLAG, "print each host change as the equivalent ip/nft command"),
    Option(("-q", "--quiet"), FLAG, "only names"),
]


def main(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help"):
        sys.stdout.write("Usage: minirt network ls | rm NAME...\n")
        return 0
    sub, rest = args[0], args[1:]
    opts, operands = parse(OPTIONS, rest, stop_at_operand=False)
    explain.enabled = opts["explain"]
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
        return 0
    if sub in ("rm", "remove"):
        if not operands:
            raise ConfigError("network rm: give at least one network name")
        if os.geteuid() != 0:
            raise ConfigError("must run as root (removing a bridge needs CAP_NET_ADMIN)")
        from minirt.net.netlink import Rtnl

        host = Rtnl.host()
        for name in operands:
            network.remove(root, name, host)
            print(name)
        return 0
    raise ConfigError(f"network: unknown subcommand {sub!r} (ls, rm)")
