"""A fake upstream DNS server for forwarding tests: answers every A question with 192.0.2.99.

Run inside a namespace the test created (never the real host): python fakedns.py ADDRESS.
Prints "listening" once bound and appends each question's name to stdout, so a test can tell
what was forwarded to it. Speaks the wire format through minirt's own encoder.
"""

import socket
import sys

from minirt.net import dnswire as w


def main() -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((sys.argv[1], 53))
    print("listening", flush=True)
    while True:
        data, peer = s.recvfrom(4096)
        q = w.parse_query(data)
        print(f"asked {q.name} {q.qtype}", flush=True)
        answers = [(w.A, w.a_rdata("192.0.2.99"))] if q.qtype == w.A else []
        s.sendto(w.response(q, w.NOERROR, answers, ttl=1, aa=False, ra=True), peer)


if __name__ == "__main__":
    main()
