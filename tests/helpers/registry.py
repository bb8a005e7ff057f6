"""Debian's docker-registry, started by a test on loopback inside its throwaway namespace,
with a config and storage of the test's own; images pushed with a small client of the
distribution API's upload endpoints (monolithic uploads); the front proxy of
registry_proxy.py for bearer tokens and dropped connections."""

import gzip
import hashlib
import http.client
import json
import os
import subprocess
import sys
import time

from tests.conftest import REPO

REGISTRY = "/usr/bin/docker-registry"
PORT, PROXY_PORT = 5000, 5001

ENV = {**os.environ, "PYTHONPATH": REPO}  # nsenter -m starts in /: the checkout's tests package by path
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Registry:
    def __init__(self, host, tmp: str, bearer: bool = True, drop_after: int = 0):
        assert os.path.exists(REGISTRY), "docker-registry is not installed: run `make engines`"
        self.host, self.tmp = host, tmp
        self.storage = f"{tmp}/storage"
        self.log = f"{tmp}/proxy.log"
        os.makedirs(self.storage, exist_ok=True)
        with open(f"{tmp}/config.yml", "w") as f:
            f.write(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {self.storage}\n"
                    f"  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{PORT}\n")  # fmt: skip
        self.procs = []
        try:
            self._start(host, tmp, bearer, drop_after)
        except BaseException:
            self.close()
            raise

    def _start(self, host, tmp: str, bearer: bool, drop_after: int) -> None:
        with open(f"{tmp}/registry.err", "w") as err:
            self.procs.append(subprocess.Popen([*host.prefix(), REGISTRY, "serve", f"{tmp}/config.yml"],
                                               stdout=subprocess.DEVNULL, stderr=err))  # fmt: skip
        args = [str(PROXY_PORT), str(PORT), self.log] + (["--bearer"] if bearer else [])
        args += ["--drop-after", str(drop_after)] if drop_after else []
        proxy = subprocess.Popen([*host.prefix(), sys.executable, "-m", "tests.helpers.registry_proxy", *args],
                                 env=ENV, stdout=subprocess.PIPE, text=True)  # fmt: skip
        self.procs.append(proxy)
        assert proxy.stdout.readline() == "up\n"
        deadline = time.monotonic() + 20
        while self._client("status") != "200":
            assert time.monotonic() < deadline, open(f"{tmp}/registry.err").read()
            time.sleep(0.1)

    def _client(self, *args: str) -> str:
        r = subprocess.run([*self.host.prefix(), sys.executable, "-m", "tests.helpers.registry", *args],
                           env=ENV, capture_output=True, text=True, timeout=120)  # fmt: skip
        return r.stdout.strip() if r.returncode == 0 else f"error: {r.stderr}"

    def push(self, name: str, tag: str, layers: list[bytes], config: bytes, index: bool = False) -> str:
        """Push gzip layers, the config and an OCI manifest (behind an index when asked);
        returns the digest of what the tag points at."""
        d = f"{self.tmp}/push-{name.replace('/', '_')}-{tag}"
        os.makedirs(d, exist_ok=True)
        blobs = {}
        descs = []
        for data in layers:
            z = gzip.compress(data, mtime=0)
            blobs[sha(z)] = z
            descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(z), "size": len(z)})
        blobs[sha(config)] = config
        manifest = json.dumps({"schemaVersion": 2, "mediaType": MANIFEST, "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
            "layers": descs}).encode()  # fmt: skip
        manifests = [(sha(manifest), MANIFEST, manifest)]
        if index:
            entries = [{"mediaType": MANIFEST, "digest": sha(manifest), "size": len(manifest),
                        "platform": {"os": "linux", "architecture": arch}} for arch in ("s390x", "amd64")]
            idx = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": entries}).encode()
            manifests.append((tag, INDEX, idx))
        else:
            manifests.append((tag, MANIFEST, manifest))
        for digest, data in blobs.items():
            with open(f"{d}/{digest[7:]}", "wb") as f:
                f.write(data)
        for i, (ref, media, data) in enumerate(manifests):
            with open(f"{d}/manifest{i}", "wb") as f:
                f.write(data)
        plan = {"name": name, "blobs": list(blobs), "manifests": [[ref, media, f"manifest{i}"]
                                                                  for i, (ref, media, _) in enumerate(manifests)]}
        with open(f"{d}/plan.json", "w") as f:
            json.dump(plan, f)
        out = self._client("push", d)
        assert out.startswith("sha256:"), out
        return out

    def blob_path(self, digest: str) -> str:
        return f"{self.storage}/docker/registry/v2/blobs/sha256/{digest[7:9]}/{digest[7:]}/data"

    def requests(self) -> list[dict]:
        try:
            with open(self.log) as f:
                return [json.loads(line) for line in f]
        except FileNotFoundError:
            return []

    def close(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()


# -- run inside the namespace ------------------------------------------------------------------

def _push(d: str) -> str:
    with open(f"{d}/plan.json") as f:
        plan = json.load(f)
    name = plan["name"]
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    for digest in plan["blobs"]:
        with open(f"{d}/{digest[7:]}", "rb") as f:
            data = f.read()
        conn.request("POST", f"/v2/{name}/blobs/uploads/", headers={"Content-Length": "0"})
        r = conn.getresponse()
        r.read()
        assert r.status == 202, (r.status, digest)
        loc = r.getheader("Location")
        loc = loc.split("127.0.0.1:%d" % PORT, 1)[-1]
        sep = "&" if "?" in loc else "?"
        conn.request("PUT", f"{loc}{sep}digest={digest}", body=data,
                     headers={"Content-Type": "application/octet-stream", "Content-Length": str(len(data))})
        r = conn.getresponse()
        r.read()
        assert r.status == 201, (r.status, digest)
    top = ""
    for ref, media, fname in plan["manifests"]:
        with open(f"{d}/{fname}", "rb") as f:
            data = f.read()
        conn.request("PUT", f"/v2/{name}/manifests/{ref}", body=data,
                     headers={"Content-Type": media, "Content-Length": str(len(data))})
        r = conn.getresponse()
        body = r.read()
        assert r.status == 201, (r.status, body)
        top = r.getheader("Docker-Content-Digest")
    return top


def _status() -> str:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=2)
        conn.request("GET", "/v2/")
        return str(conn.getresponse().status)
    except OSError:
        return "down"


if __name__ == "__main__":
    if sys.argv[1] == "push":
        print(_push(sys.argv[2]))
    else:
        print(_status())
