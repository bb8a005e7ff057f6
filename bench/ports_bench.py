"""Published-port costs, run by bench.py inside a throwaway network namespace (`unshare -n`).

- publish / unpublish one port with 0, 100 and 1000 ports already published (20 alternating
  publish/unpublish pairs: median, min and max);
- TCP connection setup to a published port with 1 vs 1000 published (median of 200):
  a client connects to 127.0.0.1:<port>, the output-hook DNAT sends it to a server on a local
  address of this namespace, so the path measured is nft's map lookup plus TCP setup.
Only loopback and this namespace's own addresses are used.
"""

import os
import socket
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from minirt.net.firewall import NetworkSpec  # noqa: E402
from minirt.net.firewall import ports as fwports  # noqa: E402
from minirt.net.firewall.nftables import NftablesBackend  # noqa: E402
from minirt.net.ports import PortMapping  # noqa: E402

SERVER = "10.99.0.1"


def serve() -> None:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((SERVER, 80))
    s.listen(512)
    while True:
        c, _ = s.accept()
        c.close()


def times_ms(fn, n: int) -> list[float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return times


def median_ms(fn, n: int) -> float:
    return statistics.median(times_ms(fn, n))


def cell(times: list[float]) -> str:
    """"median (min–max)" of a list of ms, two decimals."""
    return f"{statistics.median(times):.2f} ({min(times):.2f}–{max(times):.2f})"


def main() -> None:
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "addr", "add", f"{SERVER}/32", "dev", "lo"], check=True)
    threading.Thread(target=serve, daemon=True).start()
    NftablesBackend().setup_network(NetworkSpec("bench", "br-bench", "10.98.0.0/24", "10.98.0.1"))
    one = [PortMapping("0.0.0.0", 18080, 80, "tcp")]
    rows = []
    published: list[PortMapping] = []
    for target in (0, 100, 1000):
        extra = [PortMapping("0.0.0.0", 20000 + i, 80, "tcp") for i in range(len(published), target)]
        if extra:
            fwports.publish(fwports.elements(extra, "10.98.0.9"))
            published += extra
        pub, unpub = [], []
        for _ in range(20):  # alternate, so every publish starts from the same state
            pub += times_ms(lambda: fwports.publish(fwports.elements(one, SERVER)), 1)
            unpub += times_ms(lambda: fwports.unpublish(fwports.elements(one, SERVER)), 1)
        rows.append((target, pub, unpub))
    print("| already published | publish one, median (min–max) ms | unpublish one, median (min–max) ms | runs |")
    print("|--:|--:|--:|--:|")
    for target, pub, unpub in rows:
        print(f"| {target} | {cell(pub)} | {cell(unpub)} | {len(pub)} |")
    fwports.publish(fwports.elements(one, SERVER))

    def connect() -> None:
        c = socket.create_connection(("127.0.0.1", 18080), timeout=2)
        c.close()

    with_1000 = median_ms(connect, 200)
    fwports.unpublish(fwports.elements(published, "10.98.0.9"))
    with_1 = median_ms(connect, 200)
    print()
    print("| published ports | TCP connect to a published port, median (ms) |")
    print("|--:|--:|")
    print(f"| 1 | {with_1:.3f} |")
    print(f"| 1001 | {with_1000:.3f} |")


if __name__ == "__main__":
    main()
