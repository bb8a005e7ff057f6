"""The process's one libnftables context (the nftables Python bindings), made on first use.

Runs in: whichever minirt process first changes or lists the packet filter: network setup and
removal, publishing without a helper, the nft helper itself (nfthelper.py), gc and reload.
A leaf: the backend, the port scripts and the helper all reach libnftables through it.

Dry run (explain.dry, `--dry-run`): the context is made in libnftables' dry-run mode (`nft -c`):
each transaction is sent to the kernel, checked, and aborted instead of committed. The plan is
validated by the kernel, and nothing changes.
"""

import sys

_ctx = None


def context():
    """The process's libnftables context, created on first use (import included)."""
    global _ctx
    if _ctx is None:
        nftables = _import_bindings()  # lazy: only network setup and removal pay for it
        _ctx = nftables.Nftables()
        from minirt import explain

        if explain.dry:
            _ctx.set_dry_run(True)
    return _ctx


class _JsonOnFirstUse(type(sys)):  # types.ModuleType, without importing types (0.7 ms)
    """Stands in for `json` while the bindings import: they `import json` at the top but use
    it only in json_cmd() and the JSON validator, and json pulls in re and enum, ~17 of the
    import's ~23 ms here (`python -X importtime`). Port publishing sends text scripts
    (ports.py), so `run -p` never needs it; the first use of any attribute imports the real
    module. importlib's LazyLoader cannot do this: the import statement itself reads the
    module's __spec__, which makes LazyLoader load it at once."""

    def __getattr__(self, name):
        import importlib

        return getattr(importlib.import_module("json"), name)


def _import_bindings():
    if "json" in sys.modules:
        import nftables

        return nftables
    sys.modules["json"] = _JsonOnFirstUse("json")
    try:
        import nftables
    finally:
        del sys.modules["json"]  # everyone else (and the stand-in's first use) imports the real one
    return nftables


def listing(command: str, json: bool = False, handles: bool = False) -> tuple[int, str, str]:
    """One read-only command with JSON or handle output on for it alone (the context is the
    process's, shared with the code that changes the ruleset)."""
    ctx = context()
    if json:
        ctx.set_json_output(True)
    if handles:
        ctx.set_handle_output(True)
    try:
        return ctx.cmd(command)
    finally:
        if json:
            ctx.set_json_output(False)
        if handles:
            ctx.set_handle_output(False)
