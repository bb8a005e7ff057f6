"""Firewall backends for bridge networks: what a network needs from the packet filter.

Runs in: the minirt parent, host network namespace, when a network is set up or removed.

A backend is any object with this shape (netavark's FirewallDriver, sshuttle's BaseMethod);
no typing.Protocol, to keep the import free:

    name: str                                   "nftables" | "none", recorded in network.json
    setup_network(net: NetworkSpec) -> None     one atomic change; idempotent (apply it again
                                                to repair a damaged ruleset)
    teardown_network(net: NetworkSpec) -> None  one atomic change; idempotent (a network that
                                                is already gone is not an error)
    delete_table() -> None                      remove everything the backend made (tests, gc)
    publish(elements) -> None                   add published-port elements, (map, key, value)
                                                triples from firewall/ports.elements(); one
                                                transaction; idempotent
    begin_publish(elements) -> done()           publish() in two halves: started now, done()
                                                waits for it (raises as publish() does); `run
                                                -p` builds the veth in between
    unpublish(elements) -> None                 delete the elements that still map to our
                                                values (value-checked: another container's are
                                                left alone); idempotent
    published() -> dict                         {(map, key): value} in the kernel (gc, reload)
    start_helper() / stop_helper()              `run -p` only: load the packet filter's library
                                                in a helper process on the other core while the
                                                container is built (nfthelper.py)

They raise FirewallError when the packet filter refuses the change, and then nothing changed,
or ConfigError for a spec that cannot be expressed (checked before anything is sent).
Backends are imported lazily by get_backend() (sshuttle's get_method, pipx's get_backend): the
nftables bindings are loaded only when a network is set up or removed, never on the
per-container path of a container without published ports (`-p` loads them in a helper forked
before the container: firewall/nfthelper.py, firewall/ports.py). Teardown uses the backend recorded in the network's network.json, not the
current default (netavark's firewall-driver file, pipx's "metadata above env").

Other firewalls on the host are not minirt's to change: see the coexistence note in
ruleset.py (an accept in our table does not beat a drop in someone else's).
"""

from minirt.errors import ConfigError, FirewallError  # noqa: F401 - FirewallError is part of the backend interface

BACKENDS = ("nftables", "none")


class NetworkSpec:
    """What the firewall needs to know of a network. The gateway is not used by the rules yet;
    it is here so that backends that need it (DNS, hairpin) do not change the signature."""

    __slots__ = ("name", "bridge", "subnet", "gateway", "internal", "icc", "subnet6", "gateway6", "masquerade")

    def __init__(self, name: str, bridge: str, subnet: str, gateway: str, internal: bool = False,
                 icc: bool = True, subnet6: str | None = None, gateway6: str | None = None):  # fmt: skip
        self.name = name
        self.bridge = bridge
        self.subnet = subnet
        self.gateway = gateway
        self.internal = internal
        self.icc = icc  # False: containers of the network cannot reach each other (Docker's enable_icc)
        self.subnet6 = subnet6  # dual-stack networks only
        self.gateway6 = gateway6
        self.masquerade = True  # False: no masquerade rule though not internal (CNI's ipMasq: false)

    def __repr__(self) -> str:
        return (
            f"NetworkSpec({self.name!r}, {self.bridge!r}, {self.subnet!r}, {self.gateway!r}"
            f"{', internal=True' if self.internal else ''}{', icc=False' if not self.icc else ''}"
            f"{', masquerade=False' if not self.masquerade else ''}"
            f"{f', subnet6={self.subnet6!r}' if self.subnet6 else ''})"
        )


def get_backend(name: str):
    """The backend called `name`, its module imported only now."""
    if name == "nftables":
        from minirt.net.firewall.nftables import NftablesBackend

        return NftablesBackend()
    if name == "none":
        from minirt.net.firewall.none import NoFirewall

        return NoFirewall()
    raise ConfigError(f"unknown firewall backend {name!r} (known: {', '.join(BACKENDS)})")
