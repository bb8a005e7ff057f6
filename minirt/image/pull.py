"""`minirt pull`: a manifest (a list/index resolved to this platform), the config, then the
layers, up to three at a time, each under its layer lock (a concurrent pull of an image
sharing a layer waits for it, then finds it stored), downloaded to tmp/ with its digest
checked as it streams, and only then unpacked (store.unpack_layer). The image is recorded
after its last layer, so a failed pull names nothing."""

import json
import sys
import threading
import time

from minirt.image import reference
from minirt.image.archive import _pick_platform
from minirt.image.layers import remove_tree
from minirt.image.registry import INDEX_TYPES, Client, RegistryError
from minirt.image.store import ImageStore, hex_of


class Progress:
    """One line per layer. On a terminal, the lines are redrawn in place (with a bar while
    downloading); otherwise only each layer's final state is printed."""

    def __init__(self, tty: bool, out=sys.stdout):
        self.tty, self.out = tty, out
        self.lines: dict[str, str] = {}
        self.lock = threading.Lock()
        self.last = 0.0
        self.drawn = 0

    def set(self, key: str, text: str, final: bool = False) -> None:
        with self.lock:
            self.lines[key] = f"{key}: {text}"
            if not self.tty:
                if final:
                    self.out.write(f"{key}: {text}\n")
                    self.out.flush()
                return
            now = time.monotonic()
            if not final and text.startswith("Downloading") and now - self.last < 0.1:
                return
            self.last = now
            self._draw()

    def bar(self, key: str, got: int, size: int | None) -> None:
        if not self.tty:
            return
        if size:
            width = 40
            done = min(width, got * width // size)
            text = f"Downloading [{'=' * max(0, done - 1)}{'>' if done else ''}{' ' * (width - done)}] " \
                   f"{_mb(got)}/{_mb(size)}"  # fmt: skip
        else:
            text = f"Downloading {_mb(got)}"
        self.set(key, text)

    def _draw(self) -> None:
        if self.drawn:
            self.out.write(f"\x1b[{self.drawn}A")
        for line in self.lines.values():
            self.out.write(f"\x1b[2K{line}\n")
        self.drawn = len(self.lines)
        self.out.flush()


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f}MB" if n >= 1e5 else f"{n / 1e3:.1f}kB"


def pull(text: str, store: ImageStore, insecure: set[str], quiet: bool = False, tty: bool = False) -> str:
    ref = reference.parse(text)
    out = (lambda s: None) if quiet else (lambda s: (sys.stdout.write(s + "\n"), sys.stdout.flush()))
    client = Client(ref.domain, ref.path, insecure=ref.domain in insecure)
    wanted = ref.digest or ref.tag
    out(f"{wanted}: Pulling from {ref.path}")
    body, media, manifest_digest = client.manifest(wanted)
    if media in INDEX_TYPES:
        desc = _pick_platform(json.loads(body), f"{ref}")
        body, media, _ = client.manifest(desc["digest"])  # checked against the index's digest
    manifest = json.loads(body)
    config_digest = manifest["config"]["digest"]
    config_bytes = client.blob_bytes(config_digest)
    config = json.loads(config_bytes)
    diffids = (config.get("rootfs") or {}).get("diff_ids") or []
    layers = manifest.get("layers") or []
    if len(diffids) != len(layers):
        raise RegistryError(f"{ref}: the config lists {len(diffids)} DiffIDs for {len(layers)} layers")
    progress = Progress(tty and not quiet)
    if quiet:
        progress.set = lambda *a, **k: None  # type: ignore[method-assign]
    errors: list[BaseException] = []

    def fetch(i: int) -> None:
        desc, diffid = layers[i], diffids[i]
        key = hex_of(desc["digest"])[:12]
        try:
            with store.layer_lock(diffid):
                if store.has_layer(diffid):
                    progress.set(key, "Already exists", final=True)
                    return
                tmp = store.tempdir()
                try:
                    size = desc.get("size")
                    client.download(desc["digest"], size, f"{tmp}/blob", lambda n: progress.bar(key, n, size))
                    progress.set(key, "Extracting")
                    store.unpack_layer(lambda: open(f"{tmp}/blob", "rb"), diffid, f"layer {desc['digest']}")
                finally:
                    remove_tree(tmp)
                progress.set(key, "Pull complete", final=True)
        except BaseException as e:  # noqa: BLE001 - reported by the caller, after every worker ends
            errors.append(e)

    with store.writing():
        existed = config_digest in store.image_ids()
        for desc in layers:  # one line per layer, in the manifest's order (Docker's)
            progress.set(hex_of(desc["digest"])[:12], "Pulling fs layer")
        # at most three downloads at once (Docker's max-concurrent-downloads default)
        gate = threading.Semaphore(3)

        def gated(i: int) -> None:
            with gate:
                fetch(i)

        threads = [threading.Thread(target=gated, args=(i,), daemon=True) for i in range(len(layers))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]
        keys = [] if ref.digest else [ref.key()]
        image_id = store.add_image(config_bytes, diffids, keys, config_digest, [f"{ref.name}@{manifest_digest}"])
    out(f"Digest: {manifest_digest}")
    out(f"Status: {'Image is up to date' if existed else 'Downloaded newer image'} for {ref}")
    return image_id
