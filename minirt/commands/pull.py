"""minirt pull [-q] [--insecure-registry HOST] [REGISTRY/]NAME[:TAG|@DIGEST]: an image from a
registry, over the OCI distribution API (docs/images.md, "pull")."""

from minirt.cliparse import FLAG, LIST, Option, parse
from minirt.errors import ConfigError

OPTIONS = [
    Option(("-q", "--quiet"), FLAG, "print only the image's name"),
    Option(("--insecure-registry",), LIST, "allow plain HTTP for this registry (loopback always may)", "HOST"),
]


def main(args: list[str]) -> int:
    import os

    from minirt.config import host_config
    from minirt.image import reference
    from minirt.image.pull import pull
    from minirt.image.store import ImageStore

    opts, rest = parse(OPTIONS, args, stop_at_operand=False, prog="minirt pull [OPTIONS] NAME[:TAG|@DIGEST]")
    if len(rest) != 1:
        raise ConfigError('"pull" requires exactly 1 argument: NAME[:TAG|@DIGEST]')
    insecure = set(opts["insecure_registry"]) | set(host_config().get("insecure_registries") or [])
    pull(rest[0], ImageStore(), insecure, quiet=opts["quiet"], tty=os.isatty(1))
    if opts["quiet"]:
        print(reference.parse(rest[0]))
    return 0
