"""The no-op firewall backend: for hosts where the user manages forwarding and NAT themselves.

Runs in: anywhere; touches nothing. With it, containers on a bridge reach each other, but
nothing is masqueraded and nothing is dropped by minirt (whatever the host's own firewall
decides still applies).
"""


class NoFirewall:
    name = "none"

    def setup_network(self, net) -> None:
        pass

    def teardown_network(self, net) -> None:
        pass

    def delete_table(self) -> None:
        pass

    def start_helper(self) -> None:
        pass

    def stop_helper(self) -> None:
        pass

    def publish(self, elements) -> None:
        pass

    def begin_publish(self, elements):
        return lambda: None

    def unpublish(self, elements) -> None:
        pass

    def published(self) -> dict:
        return {}
