"""Unit tests: pure modules only (no root, namespaces, mounts or network).

`python -m pytest` from the checkout (and pytest's rootdir insertion, tests/ being a package)
puts the checkout's minirt/ first on sys.path, but the compiled extensions minirt._syscalls and
minirt._seccomp only exist in the installed copy (the venv, non-editable) or build/lib*.
minirt.process.init imports the first (via rootfs -> libc), the seccomp tests the second, so
when the checkout has no built extension, load the real ones that `make venv` compiled from the
same sources. Nothing is stubbed.
"""

import glob
import importlib.machinery
import importlib.util
import os
import sys
import sysconfig

import minirt

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _load_extension(name: str) -> None:
    try:
        importlib.import_module(f"minirt.{name}")
        return
    except ModuleNotFoundError:
        pass
    suffixes = importlib.machinery.EXTENSION_SUFFIXES
    dirs = [os.path.join(sysconfig.get_paths()["platlib"], "minirt")]
    dirs += sorted(glob.glob(os.path.join(REPO, "build", "lib*", "minirt")))
    for d in dirs:
        for suffix in suffixes:
            path = os.path.join(d, name + suffix)
            if os.path.exists(path):
                spec = importlib.util.spec_from_file_location(f"minirt.{name}", path)
                mod = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(mod)
                sys.modules[f"minirt.{name}"] = mod
                setattr(minirt, name, mod)
                return
    # Leave it missing: the tests that need it then fail at import with the real ModuleNotFoundError.


_load_extension("_syscalls")
_load_extension("_seccomp")  # the seccomp compiler (libseccomp), for test_seccomp_cache.py
