"""minirt port CONTAINER: the published ports, as `docker port` prints them."""

from minirt.cliparse import parse
from minirt.errors import ConfigError
from minirt.state import Store


def main(args: list[str]) -> int:
    _, refs = parse([], args, stop_at_operand=False, prog="minirt port CONTAINER")
    if len(refs) != 1:
        raise ConfigError("port: give exactly one container")
    store = Store()
    rec = store.load(store.resolve(refs[0]))
    dual_stack = bool((rec.get("network") or {}).get("address6"))
    for m in rec.get("config", {}).get("ports") or []:
        host = f"[{m['host_ip']}]" if ":" in m["host_ip"] else m["host_ip"]
        print(f"{m['container_port']}/{m['proto']} -> {host}:{m['host_port']}")
        if dual_stack and m["host_ip"] == "0.0.0.0":  # Docker lists the IPv6 side as [::]
            print(f"{m['container_port']}/{m['proto']} -> [::]:{m['host_port']}")
    return 0
