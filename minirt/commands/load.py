"""minirt load -i FILE: images from a `docker save` tarball or an OCI image layout (a tar, or a
directory) into the image store (docs/images.md)."""

from minirt.cliparse import FLAG, VALUE, Option, parse
from minirt.errors import ConfigError

OPTIONS = [
    Option(("-i", "--input"), VALUE, "read from this tar archive or OCI layout directory", "FILE"),
    Option(("-q", "--quiet"), FLAG, "suppress the load output"),
]


def main(args: list[str]) -> int:
    import sys

    from minirt.image.store import ImageStore

    opts, rest = parse(OPTIONS, args, stop_at_operand=False, prog="minirt load [OPTIONS]")
    if rest:
        raise ConfigError(f"load: unexpected argument {rest[0]!r} (use -i FILE)")
    path = opts["input"]
    if not path:
        if sys.stdin.isatty():
            raise ConfigError("requested load from stdin, but stdin is empty (use -i FILE)")
        path = "/dev/stdin"
    if path == "/dev/stdin":
        # tarfile needs to seek: spool stdin to the store's tmp/ first
        import shutil

        store = ImageStore()
        with store.writing():  # gc leaves the spooled copy in tmp/ alone meanwhile
            tmp = store.tempdir()
            try:
                with open(f"{tmp}/input.tar", "wb") as f:
                    shutil.copyfileobj(sys.stdin.buffer, f)
                return _load(f"{tmp}/input.tar", store, opts["quiet"])
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    return _load(path, ImageStore(), opts["quiet"])


def _load(path: str, store, quiet: bool) -> int:
    from minirt.image import archive, reference

    log = None if quiet else print
    for image_id, keys in archive.load(path, store, log):
        if quiet:
            continue
        if keys:
            for k in keys:
                print(f"Loaded image: {reference.parse(k)}")
        else:
            print(f"Loaded image ID: {image_id}")
    return 0
