"""Image names, normalised as Docker does (distribution/reference normalize.go):

    busybox                 -> docker.io/library/busybox:latest
    me/app:1                -> docker.io/me/app:1
    localhost:5000/app      -> localhost:5000/app:latest   (a first component with '.' or ':',
                                                            or `localhost`, is a registry)
    app@sha256:<hex>        -> docker.io/library/app@sha256:<hex>

and shown back in Docker's "familiar" form (docker.io/ and library/ left out)."""

from minirt.errors import ConfigError

DEFAULT_DOMAIN = "docker.io"
LEGACY_DOMAIN = "index.docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"

# distribution/reference regexp.go, checked by hand: `re` (with enum) costs ~8 ms to import,
# and `run IMAGE` parses a name on its start-up path.
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_HEX = frozenset("0123456789abcdef")
_WORD = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")


def _component_ok(comp: str) -> bool:
    r"""[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*"""
    if not comp or comp[0] not in _ALNUM or comp[-1] not in _ALNUM:
        return False
    i, n = 0, len(comp)
    while i < n:
        c = comp[i]
        if c in _ALNUM:
            i += 1
            continue
        j = i
        while j < n and comp[j] not in _ALNUM:
            j += 1
        sep = comp[i:j]
        if not (sep in (".", "_", "__") or set(sep) == {"-"}):
            return False
        i = j
    return True


def _tag_ok(tag: str) -> bool:
    r"""[\w][\w.-]{0,127}"""
    return 0 < len(tag) <= 128 and tag[0] in _WORD and all(c in _WORD or c in ".-" for c in tag)


def _digest_ok(digest: str) -> bool:
    algo, _, hexpart = digest.partition(":")
    return algo == "sha256" and len(hexpart) == 64 and set(hexpart) <= _HEX


def _domain_ok(domain: str) -> bool:
    """host[:port] with host a dotted name or a [v6] literal."""
    if domain.startswith("["):
        host, sep, rest = domain[1:].partition("]")
        if not sep or not host or not all(c in "0123456789abcdefABCDEF:" for c in host):
            return False
        return not rest or (rest[0] == ":" and rest[1:].isdigit())
    host, sep, port = domain.partition(":")
    if sep and not (port.isdigit() and port.isascii()):
        return False
    return all(lab and lab.isascii() and lab[0].isalnum() and lab[-1].isalnum()
               and all(c.isalnum() or c == "-" for c in lab) for lab in host.split("."))  # fmt: skip


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
        if not _digest_ok(digest):
            raise ConfigError(f"invalid reference format: {text!r} (digest must be sha256:<64 hex>)")
    tag = None
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        ref, tag = ref[:colon], ref[colon + 1 :]
        if not _tag_ok(tag):
            raise ConfigError(f"invalid reference format: {text!r} (bad tag {tag!r})")
    if not ref:
        raise ConfigError(f"invalid reference format: {text!r}")
    first, sep, rest = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain, path = first, rest
        if not _domain_ok(domain):
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
        if not _component_ok(comp):
            raise ConfigError(f"invalid reference format: {text!r}")
    if len(domain) + 1 + len(path) > 255:
        raise ConfigError(f"invalid reference format: {text!r} (repository name must not be more than 255 characters)")
    if tag is None and digest is None:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest)
