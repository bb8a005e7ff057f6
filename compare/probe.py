"""HTTP probe run by the harness inside a namespace: python3 probe.py HOST PORT -> ok|refused|timeout|error."""
import socket
import sys

try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)
    s.settimeout(3)
    s.sendall(b"GET /hostname HTTP/1.0\r\n\r\n")
    data = s.recv(64)
    print("ok" if data.startswith(b"HTTP/") else "no-http")
except ConnectionRefusedError:
    print("refused")
except (socket.timeout, TimeoutError):
    print("timeout")
except OSError as e:
    print(f"error {e.errno}")
