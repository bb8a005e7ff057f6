"""Tiny TCP/UDP servers that answer each client with the address they saw it come from.

The UDP server speaks just enough TFTP for busybox's `tftp -g` client (busybox nc has no -u):
a read request (opcode 1) is answered with one DATA block (opcode 3, block 1) holding the
text, which ends the transfer; anything else (the client's ACK) is ignored.

Run inside a test's own namespace (the fake upstream `wan`): python servers.py tcp|udp PORT [6]
(6: IPv6, on ::).
Prints "listening" once bound; serves until killed. Bounded by design: one reply per request.
"""

import socket
import sys


def main() -> None:
    proto, port = sys.argv[1], int(sys.argv[2])
    family, anyaddr = (socket.AF_INET6, "::") if sys.argv[3:] == ["6"] else (socket.AF_INET, "0.0.0.0")
    if proto == "tcp":
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((anyaddr, port))
        s.listen(16)
        print("listening", flush=True)
        while True:
            conn, peer = s.accept()
            with conn:
                conn.settimeout(5)
                try:
                    conn.recv(1024)
                except OSError:
                    pass
                conn.sendall(f"from {peer[0]}\n".encode())
    else:
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.bind((anyaddr, port))
        print("listening", flush=True)
        while True:
            data, peer = s.recvfrom(1024)
            if data[:2] == b"\x00\x01":
                s.sendto(b"\x00\x03\x00\x01" + f"from {peer[0]}\n".encode(), peer)


if __name__ == "__main__":
    main()
