"""minirt rmi [-f] IMAGE...: untag, and remove an image once no name is left.

Docker's rules (daemon/images/image_delete.go): a name of an image with other names is only
untagged; an image any container uses (running or stopped) is refused unless -f; -f never
removes an image a running container uses. A container created from an image removed with -f
keeps its layers: `gc` keeps every layer a container record names."""

from minirt.cliparse import FLAG, Option, parse
from minirt.errors import ConfigError, ConflictError, MinirtError

OPTIONS = [Option(("-f", "--force"), FLAG, "remove the image even if a stopped container uses it")]


def main(args: list[str]) -> int:
    from minirt import liveness
    from minirt.image import reference
    from minirt.image.store import ImageStore, containers_using

    opts, refs = parse(OPTIONS, args, stop_at_operand=False, prog="minirt rmi [OPTIONS] IMAGE [IMAGE...]")
    if not refs:
        raise ConfigError('"rmi" requires at least 1 argument')
    store = ImageStore()
    failed = None
    for text in refs:
        try:
            image_id, key = store.lookup(text)
            short = image_id[7:19]
            tags = store.tags_of(image_id)
            users = containers_using(image_id)
            running = [c for c in users if liveness.init_alive(c)]
            if key is not None and len(tags) > 1:
                store.untag(key)  # other names remain: only this one goes (no conflict check)
                print(f"Untagged: {reference.parse(key)}")
                continue
            if running and (opts["force"] or key is None):
                raise ConflictError(f"conflict: unable to delete {short} (cannot be forced) - image is being used "
                                    f"by running container {running[0]['id'][:12]}")  # fmt: skip
            if users and not opts["force"]:
                what = f"repository reference {text!r}" if key is not None else short
                raise ConflictError(f"conflict: unable to remove {what} (must force) - container "
                                    f"{users[0]['id'][:12]} is using its referenced image {short}")  # fmt: skip
            if key is None and len(tags) > 1 and not opts["force"]:
                raise ConflictError(f"conflict: unable to delete {short} (must be forced) - image is referenced "
                                    "in multiple repositories")  # fmt: skip
            for k in tags:
                print(f"Untagged: {reference.parse(k)}")
            store.delete_image(image_id)
            print(f"Deleted: {image_id}")
        except MinirtError as e:
            import sys

            sys.stderr.write(f"minirt: {e}\n")
            failed = e
    if failed is not None:
        return 1  # docker rmi exits 1 when any image could not be removed
    return 0
