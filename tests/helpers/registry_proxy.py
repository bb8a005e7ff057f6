"""A test front for the registry, run inside the test's namespace: it forwards to the real
registry (Debian's docker-registry) and can (a) demand bearer tokens it hands out itself from
/token, the way Docker Hub's auth.docker.io does, and (b) drop the connection once in the
middle of the first large blob it serves. It logs each request it sees, one JSON line each.

    python -m tests.helpers.registry_proxy PORT UPSTREAM_PORT LOGFILE [--bearer] [--drop-after N]
"""

import http.client
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOKEN = "minirt-test-token"


def main() -> None:
    port, upstream, logfile = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    bearer = "--bearer" in sys.argv
    drop_after = int(sys.argv[sys.argv.index("--drop-after") + 1]) if "--drop-after" in sys.argv else 0
    state = {"dropped": False}
    claim = threading.Lock()  # blobs are fetched concurrently: exactly one of them is dropped

    def first_drop() -> bool:
        with claim:
            mine, state["dropped"] = not state["dropped"], True
            return mine

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def _log(self, **kw):
            with open(logfile, "a") as f:
                f.write(json.dumps({"path": self.path, "range": self.headers.get("Range"), **kw}) + "\n")

        def do_GET(self):
            if self.path.startswith("/token"):
                self._log(kind="token")
                body = json.dumps({"token": TOKEN}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                return
            if bearer and self.headers.get("Authorization") != f"Bearer {TOKEN}":
                self._log(kind="challenge")
                name = self.path.split("/manifests/")[0].split("/blobs/")[0].removeprefix("/v2/")
                self.send_response(401)
                self.send_header("WWW-Authenticate", f'Bearer realm="http://127.0.0.1:{port}/token",'
                                 f'service="minirt-test",scope="repository:{name}:pull"')  # fmt: skip
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self._log(kind="get")
            conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() in ("accept", "range")}
            conn.request("GET", self.path, headers=headers)
            resp = conn.getresponse()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("connection", "transfer-encoding"):
                    self.send_header(k, v)
            self.send_header("Connection", "close")
            self.end_headers()
            sent = 0
            drop = drop_after and "/blobs/" in self.path and not state["dropped"]
            while chunk := resp.read(16384):
                if drop and sent + len(chunk) > drop_after and first_drop():
                    self.wfile.write(chunk[: drop_after - sent])
                    self.wfile.flush()
                    self._log(kind="dropped", at=drop_after)
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self.wfile.write(chunk)
                sent += len(chunk)
            self.close_connection = True

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("up", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
