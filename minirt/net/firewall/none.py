"""The no-op firewall backend: for hosts where the user manages forwarding and NAT."""


class NoFirewall:
    name = "none"

    def setup_network(self, spec) -> None:
        pass

    def teardown_network(self, spec) -> None:
        pass
