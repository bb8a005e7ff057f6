"""minirt import [-c CHANGE] FILE|- [REPOSITORY[:TAG]]: a flat root filesystem tarball as an
image of one layer (docker import; -c takes CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL,
USER, WORKDIR)."""

from minirt.cliparse import LIST, VALUE, Option, parse
from minirt.errors import ConfigError

OPTIONS = [
    Option(("-c", "--change"), LIST, "apply a Dockerfile instruction to the image's config", "INSTR"),
    Option(("-m", "--message"), VALUE, "a commit message for the image's history", "TEXT"),
]


def main(args: list[str]) -> int:
    import json
    import os
    import sys
    import time

    from minirt.image import config as imgconfig
    from minirt.image import reference
    from minirt.image.archive import host_platform
    from minirt.image.store import ImageStore, now

    opts, rest = parse(OPTIONS, args, stop_at_operand=False, prog="minirt import [OPTIONS] FILE|- [REPOSITORY[:TAG]]")
    if not rest or len(rest) > 2:
        raise ConfigError('"import" requires 1 or 2 arguments: FILE|- [REPOSITORY[:TAG]]')
    source = rest[0]
    keys = [reference.parse(rest[1]).key()] if len(rest) == 2 else []
    cfg = imgconfig.apply_changes({}, opts["change"])
    if source != "-" and not os.path.isfile(source):
        raise ConfigError(f"open {source}: no such file")
    store = ImageStore()

    def opener():
        return open(source, "rb") if source != "-" else os.fdopen(os.dup(sys.stdin.fileno()), "rb")

    with store.writing():
        diffid = store.add_layer(opener, what=f"import {source}")
        osname, arch = host_platform()
        # SOURCE_DATE_EPOCH (reproducible-builds.org): `make` imports the same rootfs as the same
        # image, so a re-import leaves no dangling copy behind
        epoch = os.environ.get("SOURCE_DATE_EPOCH", "")
        created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(epoch))) if epoch.isdigit() else now()
        config = {
            "architecture": arch,
            "os": osname,
            "created": created,
            "config": cfg,
            "rootfs": {"type": "layers", "diff_ids": [diffid]},
            "history": [{"created": created, "created_by": "minirt import",
                         "comment": opts["message"] or f"Imported from {source}"}],
        }  # fmt: skip
        data = json.dumps(config, separators=(",", ":"), sort_keys=True).encode()
        image_id = store.add_image(data, [diffid], keys)
    print(image_id)
    return 0
