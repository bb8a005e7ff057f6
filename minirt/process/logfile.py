"""A detached container's log: containers/<id>/container.log, one JSON object per line
{"log", "stream", "time"} (Docker's json-file shape), rotated to container.log.1 past MAX_LOG.

Runs in: the supervisor's idle form (process/idle.py), so it imports nothing until the first
line is written: a quiet container's supervisor never loads time or the JSON encoder.
"""

import posix  # not os: its import (posix.path, stat, abc) adds ~150 KiB to every idle supervisor

MAX_LOG = 10 * 1024 * 1024


class LogWriter:
    """containers/<id>/container.log: one JSON object per line {"log", "stream", "time"}."""

    def __init__(self, cdir: str):
        self.path = cdir + "/container.log"
        self.fd = posix.open(self.path, posix.O_WRONLY | posix.O_CREAT | posix.O_APPEND | posix.O_CLOEXEC, 0o640)
        self.partial = {"stdout": b"", "stderr": b""}

    def write(self, stream: str, data: bytes) -> None:
        data = self.partial[stream] + data
        lines = data.split(b"\n")
        self.partial[stream] = lines.pop()
        for line in lines:
            self._emit(stream, line + b"\n")
        if len(self.partial[stream]) > 16384:  # a very long line without newline: flush it
            self._emit(stream, self.partial[stream])
            self.partial[stream] = b""

    def _emit(self, stream: str, line: bytes) -> None:
        import time

        from minirt import jsonenc  # the first output only: a quiet container never needs it

        ns = time.time_ns()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 10**9)) + f".{ns % 10**9:09d}Z"
        rec = {"log": line.decode(errors="replace"), "stream": stream, "time": stamp}
        posix.write(self.fd, (jsonenc.dumps(rec, indent="") + "\n").encode())  # one line: indent "" adds none
        if posix.fstat(self.fd).st_size > MAX_LOG:
            posix.replace(self.path, self.path + ".1")
            posix.close(self.fd)
            self.fd = posix.open(self.path, posix.O_WRONLY | posix.O_CREAT | posix.O_APPEND | posix.O_CLOEXEC, 0o640)

    def close(self) -> None:
        for stream, rest in self.partial.items():
            if rest:
                self._emit(stream, rest)
        posix.close(self.fd)
