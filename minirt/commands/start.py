"""minirt start CONTAINER...: run a stopped container again, detached, with the same id, name,
writable layer, network and (when still free) address."""

import os

from minirt.cliparse import parse
from minirt.errors import ConfigError, ConflictError
from minirt.state import Store


def main(args: list[str]) -> int:
    from minirt import liveness, teardown
    from minirt.config import ContainerConfig
    from minirt.process.supervisor import run_detached

    _, refs = parse([], args, stop_at_operand=False, prog="minirt start CONTAINER [CONTAINER...]")
    if not refs:
        raise ConfigError("start: give at least one container")
    store = Store()
    for ref in refs:
        cid = store.resolve(ref)
        rec = store.load(cid)
        st = liveness.status(rec)
        if st == "running":
            print(ref)
            continue
        if st == "dead":  # a crash left it: its teardown plan first, as `gc` would
            teardown.finalize_dead(store, cid)
            rec = store.load(cid)
        cfg = ContainerConfig.from_dict(rec["config"])
        cfg.detach = True
        try:
            os.unlink(store.container_dir(cid) + "/stop-requested")
        except FileNotFoundError:
            pass
        if os.geteuid() != 0:
            raise ConflictError("must run as root")
        run_detached(cfg, store, rec)
    return 0
