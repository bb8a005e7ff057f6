"""A client of the OCI distribution API (distribution-spec spec.md), for `minirt pull`.

    GET /v2/<name>/manifests/<tag|digest>   Accept: OCI index/manifest, Docker list/manifest v2
    GET /v2/<name>/blobs/<digest>           the config, then each layer (Range to resume)

Authentication is the registry's challenge (docs.docker.com/registry/spec/auth/token): a 401
with `WWW-Authenticate: Bearer realm=...,service=...,scope=...` is answered by fetching a token
from the realm (anonymously, or with the user's credentials from ~/.docker/config.json), and
`Basic` with those credentials. Docker Hub is `registry-1.docker.io`.

Transport: HTTPS. Plain HTTP only for a registry on loopback (Docker's default insecure
registry 127.0.0.0/8) or one named with --insecure-registry (or `insecure_registries` in
$MINIRT_CONFIG): HTTPS is tried first and HTTP after a TLS or connection failure, as Docker does.

Every blob is verified while it streams to a temporary file: its size, then its digest; a
layer is unpacked only from a verified file. A dropped connection is retried with a Range
request from the byte reached (a server that ignores Range starts the blob over).
"""

import base64
import hashlib
import http.client
import json
import os
import socket
import ssl
import time
import urllib.parse

from minirt.errors import MinirtError

MANIFEST_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
INDEX_TYPES = (MANIFEST_TYPES[0], MANIFEST_TYPES[2])
CHUNK = 256 * 1024
RETRIES = 5
TIMEOUT = 30


class RegistryError(MinirtError):
    pass


class TransportError(RegistryError):
    """The connection failed or dropped: worth a retry."""


def is_loopback(host: str) -> bool:
    host = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    host = host.strip("[]")
    return host == "localhost" or host == "::1" or host.startswith("127.")


def registry_host(domain: str) -> str:
    return "registry-1.docker.io" if domain == "docker.io" else domain


def docker_credentials(domain: str) -> tuple[str, str] | None:
    """user, password from $DOCKER_CONFIG/config.json (default ~/.docker/config.json) `auths`.
    Credential helpers (credsStore, credHelpers) are not run."""
    path = os.path.join(os.environ.get("DOCKER_CONFIG") or os.path.expanduser("~/.docker"), "config.json")
    try:
        with open(path) as f:
            auths = json.load(f).get("auths") or {}
    except (FileNotFoundError, ValueError, PermissionError):
        return None
    keys = [domain, f"https://{domain}", f"http://{domain}", f"https://{domain}/v1/", f"https://{domain}/v2/"]
    if domain == "docker.io":
        keys = ["https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"] + keys
    for k in keys:
        entry = auths.get(k)
        if entry and entry.get("auth"):
            user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            return user, password
        if entry and entry.get("username"):
            return entry["username"], entry.get("password", "")
    return None


def _challenge(header: str) -> tuple[str, dict]:
    """`Bearer realm="x",service="y",scope="z"` -> ("bearer", {...})."""
    scheme, _, rest = header.strip().partition(" ")
    params, i = {}, 0
    while i < len(rest):
        eq = rest.find("=", i)
        if eq < 0:
            break
        key = rest[i:eq].strip().strip(",").strip()
        i = eq + 1
        if i < len(rest) and rest[i] == '"':
            end = rest.find('"', i + 1)
            end = len(rest) if end < 0 else end
            params[key.lower()] = rest[i + 1 : end]
            i = end + 1
        else:
            end = rest.find(",", i)
            end = len(rest) if end < 0 else end
            params[key.lower()] = rest[i:end].strip()
            i = end
        while i < len(rest) and rest[i] in ", ":
            i += 1
    return scheme.lower(), params


class Client:
    def __init__(self, domain: str, path: str, insecure: bool = False):
        self.domain, self.path = domain, path
        self.host = registry_host(domain)
        self.insecure = insecure or is_loopback(self.host)
        self.scheme = None if self.insecure else "https"
        self.auth_header = None
        self.creds = docker_credentials(domain)

    # -- transport ------------------------------------------------------------------------

    def _connect(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        if scheme == "https":
            return http.client.HTTPSConnection(netloc, timeout=TIMEOUT, context=ssl.create_default_context())
        return http.client.HTTPConnection(netloc, timeout=TIMEOUT)

    def _raw(self, method: str, url: str, headers: dict, redirects: int = 5):
        """One request, following redirects (blob stores redirect to a CDN: the credentials
        are not sent to another host)."""
        u = urllib.parse.urlsplit(url)
        conn = self._connect(u.scheme, u.netloc)
        target = u.path + (f"?{u.query}" if u.query else "")
        conn.request(method, target, headers=headers)
        resp = conn.getresponse()
        if resp.status in (301, 302, 303, 307, 308) and redirects > 0:
            loc = urllib.parse.urljoin(url, resp.getheader("Location") or "")
            resp.read()
            conn.close()
            h = dict(headers)
            if urllib.parse.urlsplit(loc).netloc != u.netloc:
                h.pop("Authorization", None)
            return self._raw(method, loc, h, redirects - 1)
        return resp

    def _base(self) -> str:
        return f"{self.scheme}://{self.host}"

    def _pick_scheme(self) -> None:
        """https, then http for a loopback or --insecure-registry registry (Docker's fallback)."""
        if self.scheme is not None:
            return
        for scheme in ("https", "http"):
            try:
                resp = self._raw("GET", f"{scheme}://{self.host}/v2/", {})
                resp.read()
                self.scheme = scheme
                return
            except (ssl.SSLError, ConnectionError, http.client.HTTPException, socket.timeout):
                continue
            except OSError as e:
                raise RegistryError(f"registry {self.host}: {e.strerror or e}") from None
        raise RegistryError(f"registry {self.host}: no HTTPS or HTTP answer")

    def request(self, path: str, headers: dict | None = None):
        """GET <base><path>, authenticating on a 401 challenge (once)."""
        self._pick_scheme()
        h = dict(headers or {})
        if self.auth_header:
            h["Authorization"] = self.auth_header
        try:
            resp = self._raw("GET", self._base() + path, h)
            if resp.status == 401:  # no token yet, or an expired one: answer the challenge once
                self._authenticate(resp.getheader("WWW-Authenticate") or "")
                resp.read()
                h["Authorization"] = self.auth_header
                resp = self._raw("GET", self._base() + path, h)
        except ssl.SSLError as e:
            raise RegistryError(f"registry {self.host}: TLS: {e.reason or e} (a plain-HTTP registry needs "
                                f"--insecure-registry {self.host})") from None  # fmt: skip
        except (OSError, http.client.HTTPException) as e:
            raise TransportError(f"registry {self.host}: {getattr(e, 'strerror', None) or e!r}") from None
        return resp

    def _authenticate(self, header: str) -> None:
        scheme, params = _challenge(header)
        if scheme == "basic":
            if not self.creds:
                raise RegistryError(f"registry {self.host}: unauthorized: authentication required "
                                    "(no credentials in ~/.docker/config.json)")  # fmt: skip
            self.auth_header = "Basic " + base64.b64encode(":".join(self.creds).encode()).decode()
            return
        if scheme != "bearer" or "realm" not in params:
            raise RegistryError(f"registry {self.host}: unsupported authentication challenge {header!r}")
        query = {"service": params.get("service", "")}
        query["scope"] = params.get("scope") or f"repository:{self.path}:pull"
        url = params["realm"] + ("&" if "?" in params["realm"] else "?") + urllib.parse.urlencode(query)
        realm = urllib.parse.urlsplit(url)
        if realm.scheme != "https" and not (self.insecure and realm.scheme == "http"):
            raise RegistryError(f"registry {self.host}: token realm {params['realm']} is not HTTPS")
        h = {}
        if self.creds:
            h["Authorization"] = "Basic " + base64.b64encode(":".join(self.creds).encode()).decode()
        try:
            resp = self._raw("GET", url, h)
            body = resp.read(1 << 20)
        except (OSError, http.client.HTTPException) as e:
            raise RegistryError(f"token server {realm.netloc}: {e}") from None
        if resp.status != 200:
            raise RegistryError(f"token server {realm.netloc}: HTTP {resp.status} for {query['scope']}")
        try:
            doc = json.loads(body)
        except ValueError:
            raise RegistryError(f"token server {realm.netloc}: not a JSON answer") from None
        token = doc.get("token") or doc.get("access_token")
        if not token:
            raise RegistryError(f"token server {realm.netloc}: no token in the answer")
        self.auth_header = f"Bearer {token}"

    # -- the API --------------------------------------------------------------------------

    def _error(self, resp, what: str) -> RegistryError:
        body = resp.read(64 << 10)
        try:
            errors = json.loads(body).get("errors") or []
            detail = "; ".join(f"{e.get('code', '').lower()}: {e.get('message', '')}" for e in errors)
        except (ValueError, AttributeError):
            detail = ""
        return RegistryError(f"{what}: HTTP {resp.status}" + (f" ({detail})" if detail else ""))

    def manifest(self, reference: str) -> tuple[bytes, str, str]:
        """(body, media type, digest). A digest reference must match the body's sha256."""
        resp = self.request(f"/v2/{self.path}/manifests/{reference}", {"Accept": ", ".join(MANIFEST_TYPES)})
        if resp.status == 404:
            resp.read()
            raise RegistryError(f"manifest for {self.domain}/{self.path}:{reference} not found: manifest unknown")
        if resp.status != 200:
            raise self._error(resp, f"manifest {self.path}:{reference}")
        body = resp.read(8 << 20)
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        if reference.startswith("sha256:") and digest != reference:
            raise RegistryError(f"manifest {reference}: content has digest {digest} (corrupt or tampered)")
        media = (resp.getheader("Content-Type") or "").split(";")[0].strip()
        try:
            media = json.loads(body).get("mediaType") or media
        except ValueError:
            raise RegistryError(f"manifest {self.path}:{reference}: not JSON") from None
        if media not in MANIFEST_TYPES:
            raise RegistryError(f"manifest {self.path}:{reference}: unsupported media type {media!r} "
                                "(schema 1 manifests are not supported)")  # fmt: skip
        return body, media, digest

    def blob_bytes(self, digest: str, limit: int = 16 << 20) -> bytes:
        resp = self.request(f"/v2/{self.path}/blobs/{digest}")
        if resp.status != 200:
            raise self._error(resp, f"blob {digest}")
        data = resp.read(limit + 1)
        if len(data) > limit:
            raise RegistryError(f"blob {digest}: larger than {limit} bytes")
        got = "sha256:" + hashlib.sha256(data).hexdigest()
        if got != digest:
            raise RegistryError(f"blob {digest}: content has digest {got} (corrupt or tampered)")
        return data

    def download(self, digest: str, size: int | None, dest: str, progress=None) -> None:
        """The blob into dest, verified (size, then digest) as it streams; on a dropped
        connection, retried from the byte reached (Range), RETRIES times."""
        h = hashlib.sha256()
        got = 0
        failures = 0
        with open(dest, "wb") as f:
            while True:
                headers = {"Range": f"bytes={got}-"} if got else {}
                try:
                    resp = self.request(f"/v2/{self.path}/blobs/{digest}", headers)
                    if resp.status == 200 and got:  # Range ignored: start over
                        f.seek(0)
                        f.truncate()
                        h, got = hashlib.sha256(), 0
                    elif resp.status not in (200, 206):
                        raise self._error(resp, f"blob {digest}")
                    while True:
                        chunk = resp.read(CHUNK)
                        if not chunk:
                            break
                        f.write(chunk)
                        h.update(chunk)
                        got += len(chunk)
                        if size is not None and got > size:
                            raise RegistryError(f"blob {digest}: more than the {size} bytes its descriptor says")
                        if progress:
                            progress(got)
                    if size is not None and got < size:
                        raise ConnectionError(f"connection closed at byte {got} of {size}")
                    break
                except (OSError, http.client.HTTPException, TransportError) as e:
                    failures += 1
                    if failures > RETRIES:
                        raise RegistryError(f"blob {digest}: download failed {failures} times: {e}") from None
                    time.sleep(min(0.1 * 2**failures, 2.0))
        if "sha256:" + h.hexdigest() != digest:
            raise RegistryError(f"blob {digest}: content has digest sha256:{h.hexdigest()} (corrupt or tampered)")
