"""minirt logs [-f] [-t] CONTAINER: the container's stdout/stderr from its log file."""

import os
import sys
import time

from minirt.cliparse import FLAG, Option, parse
from minirt.errors import ConfigError
from minirt.state import Store

OPTIONS = [Option(("-f", "--follow"), FLAG, "keep printing until the container exits"),
           Option(("-t", "--timestamps"), FLAG, "prefix each line with its time")]  # fmt: skip


def main(args: list[str]) -> int:
    import json

    from minirt import liveness

    opts, refs = parse(OPTIONS, args, stop_at_operand=False, prog="minirt logs [OPTIONS] CONTAINER")
    if len(refs) != 1:
        raise ConfigError("logs: give exactly one container")
    store = Store()
    cid = store.resolve(refs[0])
    path = store.container_dir(cid) + "/container.log"
    pos = 0
    while True:
        try:
            with open(path, "rb") as f:
                f.seek(pos)
                chunk = f.read()
        except FileNotFoundError:
            chunk = b""
        lines = chunk.split(b"\n")
        rest = lines.pop()
        pos += len(chunk) - len(rest)
        for line in lines:
            rec = json.loads(line)
            text = (rec["time"] + " " if opts["timestamps"] else "") + rec["log"]
            (sys.stdout if rec["stream"] == "stdout" else sys.stderr).write(text)
        sys.stdout.flush()
        sys.stderr.flush()
        if not opts["follow"]:
            return 0
        try:
            rec = store.load(cid)
        except FileNotFoundError:
            return 0
        if liveness.status(rec) != "running" and not lines:
            return 0
        time.sleep(0.1)
        if not os.path.isdir(store.container_dir(cid)):
            return 0
