"""Image names, normalised as Docker does (distribution/reference normalize.go):

    busybox                 -> docker.io/library/busybox:latest
    me/app:1                -> docker.io/me/app:1
    localhost:5000/app      -> localhost:5000/app:latest   (a first component with '.' or ':',
                                                            or `localhost`, is a registry)
    app@sha256:<hex>        -> docker.io/library/app@sha256:<hex>

and shown back in Docker's "familiar" form (docker.io/ and library/ left out)."""

import re

from minirt.errors import ConfigError

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"

# distribution/reference regexp.go: path components and tags
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*\Z")
_TAG = re.compile(r"[\w][\w.-]{0,127}\Z")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}\Z")
_DOMAIN = re.compile(r"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*"
                     r"(?::[0-9]+)?\Z|\[[0-9a-fA-F:]+\](?::[0-9]+)?\Z")  # fmt: skip


class Reference:
    __slots__ = ("domain", "path", "tag", "digest")

    def __init__(self, domain: str, path: str, tag: str | None, digest: str | None):
        self.domain, self.path, self.tag, self.digest = domain, path, tag, digest

    @property
    def name(self) -> str:
        """docker.io/library/busybox"""
        return f"{self.domain}/{self.path}"

    def familiar_name(self) -> str:
        """busybox, me/app, localhost:5000/app: the REPOSITORY column."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        return self.path.removeprefix(OFFICIAL_PREFIX) if self.path.count("/") == 1 else self.path

    def key(self) -> str:
        """The index key: the full name with its tag (or digest)."""
        if self.digest:
            return f"{self.name}@{self.digest}"
        return f"{self.name}:{self.tag or DEFAULT_TAG}"

    def __str__(self) -> str:
        if self.digest:
            return f"{self.familiar_name()}@{self.digest}"
        return f"{self.familiar_name()}:{self.tag or DEFAULT_TAG}"


def parse(text: str) -> Reference:
    """A name as `docker run`/`pull`/`tag` take it; a bad one is a ConfigError in Docker's words."""
    ref = text
    digest = None
    if "@" in ref:
        ref, _, digest = ref.partition("@")
        if not _DIGEST.match(digest):
            raise ConfigError(f"invalid reference format: {text!r} (digest must be sha256:<64 hex>)")
    tag = None
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        ref, tag = ref[:colon], ref[colon + 1 :]
        if not _TAG.match(tag):
            raise ConfigError(f"invalid reference format: {text!r} (bad tag {tag!r})")
    if not ref:
        raise ConfigError(f"invalid reference format: {text!r}")
    first, sep, rest = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain, path = first, rest
        if not _DOMAIN.match(domain):
            raise ConfigError(f"invalid reference format: {text!r} (bad registry {domain!r})")
    else:
        domain, path = DEFAULT_DOMAIN, ref
    if domain == LEGACY_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    if path != path.lower():
        raise ConfigError(f"invalid reference format: repository name ({path}) must be lowercase")
    for comp in path.split("/"):
        if not _COMPONENT.match(comp):
            raise ConfigError(f"invalid reference format: {text!r}")
    if len(domain) + 1 + len(path) > 255:
        raise ConfigError(f"invalid reference format: {text!r} (repository name must not be more than 255 characters)")
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)


def split_key(key: str) -> tuple[str, str]:
    """An index key back to (REPOSITORY, TAG) as `minirt images` shows them."""
    ref = parse(key)
    return ref.familiar_name(), ref.tag or "<none>"
