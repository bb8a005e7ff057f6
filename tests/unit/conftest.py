"""Unit tests: pure modules only (no root, namespaces, mounts or network).

`python -m pytest` from the checkout (and pytest's rootdir insertion, tests/ being a package)
puts the checkout's minirt/ first on sys.path, but the compiled extension minirt._syscalls only
exists in the installed copy (the venv, non-editable) or build/lib*. minirt.process.init
imports it (via rootfs -> libc), so when the checkout has no built extension, load the real
one that `make venv` compiled from the same sources. Nothing is stubbed.
"""

import glob
import importlib.machinery
import importlib.util
import os
import sys
import sysconfig

import minirt

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load_syscalls_extension() -> None:
    try:
        importlib.import_module("minirt._syscalls")
        return
    except ModuleNotFoundError:
        pass
    suffixes = importlib.machinery.EXTENSION_SUFFIXES
    dirs = [os.path.join(sysconfig.get_paths()["platlib"], "minirt")]
    dirs += sorted(glob.glob(os.path.join(REPO, "build", "lib*", "minirt")))
    for d in dirs:
        for suffix in suffixes:
            path = os.path.join(d, "_syscalls" + suffix)
            if os.path.exists(path):
                spec = importlib.util.spec_from_file_location("minirt._syscalls", path)
                mod = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(mod)
                sys.modules["minirt._syscalls"] = mod
                minirt._syscalls = mod
                return
    # Leave it missing: test_init.py then fails at import with the real ModuleNotFoundError.


_load_syscalls_extension()
