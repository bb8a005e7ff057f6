"""minirt gc: reclaim what a crash left behind (leases, veths, records); healthy containers stay."""

from minirt.cliparse import FLAG, Option, parse
from minirt.state import Store

OPTIONS = [Option(("--explain",), FLAG, "print each host change")]


def main(args: list[str]) -> int:
    from minirt import control, explain

    opts, _ = parse(OPTIONS, args, stop_at_operand=False, prog="minirt gc [OPTIONS]")
    explain.enabled = opts["explain"]
    for cid in control.gc(Store()):
        print(cid[:12])
    return 0
