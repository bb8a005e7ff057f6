"""Firewall backends for bridge networks: what a network needs from the packet filter.

A backend has setup_network(spec) and teardown_network(spec), each one atomic change, both
idempotent (netavark's FirewallDriver; CNI's ipmasq). Backends are imported lazily: the
nftables bindings are only loaded when a network is created or removed, never on the
per-container path (bridge networking needs no per-container rule). The backend a network was
set up with is recorded in its network.json and used to tear it down (netavark's
firewall-driver file).
"""

from minirt.errors import ConfigError, MinirtError


class FirewallError(MinirtError):
    """libnftables refused a batch. str() is one line; batch_text holds the rendered batch."""

    def __init__(self, message: str, batch_text: str = ""):
        super().__init__(message)
        self.batch_text = batch_text
        if batch_text:
            self.add_note("the batch was:\n" + batch_text)


class NetworkSpec:
    """What the firewall needs to know of a network."""

    __slots__ = ("name", "bridge", "subnet", "gateway", "internal")

    def __init__(self, name: str, bridge: str, subnet: str, gateway: str, internal: bool = False):
        self.name, self.bridge, self.subnet, self.gateway, self.internal = name, bridge, subnet, gateway, internal


def get_backend(name: str):
    if name == "nftables":
        from minirt.net.firewall.nftables import NftablesBackend

        return NftablesBackend()
    if name == "none":
        from minirt.net.firewall.none import NoFirewall

        return NoFirewall()
    raise ConfigError(f"unknown firewall backend {name!r} (known: nftables, none)")
