"""minirt gc [--dry-run] [--explain]: finalize containers a crash left behind, then remove what
no live container owns (leases, published elements, veths, DNS responders, directories,
names); healthy containers are not touched. See minirt/reconcile.py. Then the image store:
partial content a crashed load left in tmp/, layers no image and no container record names,
config blobs of removed images (docs/images.md)."""

from minirt.cliparse import FLAG, Option, parse
from minirt.state import Store

OPTIONS = [
    Option(("--dry-run",), FLAG, "list what would be removed; change nothing"),
    Option(("--explain",), FLAG, "print each host change as the equivalent ip/nft command"),
]


def main(args: list[str]) -> int:
    from minirt import explain, reconcile

    opts, _ = parse(OPTIONS, args, stop_at_operand=False, prog="minirt gc [OPTIONS]")
    explain.enabled = opts["explain"]
    for line in reconcile.gc(Store(), dry_run=opts["dry_run"]):
        print(line)
    from minirt.image.store import ImageStore, layers_in_use

    for line in ImageStore().gc(layers_in_use(), dry_run=opts["dry_run"]):
        print(line)
    return 0
