"""minirt port CONTAINER: the published ports, as `docker port` prints them."""

from minirt.errors import ConfigError
from minirt.state import Store


def main(args: list[str]) -> int:
    if len(args) != 1:
        raise ConfigError("port: give exactly one container")
    store = Store()
    rec = store.load(store.resolve(args[0]))
    for m in rec.get("config", {}).get("ports") or []:
        print(f"{m['container_port']}/{m['proto']} -> {m['host_ip']}:{m['host_port']}")
    return 0
