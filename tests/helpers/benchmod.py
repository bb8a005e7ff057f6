"""Load a bench/ script as a module (bench/ is not a package) for the unit tests of its pure
helpers: no root, no subprocesses."""

import importlib.util
import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(script: str):
    """bench/<script>.py as the module minirt_<script>."""
    spec = importlib.util.spec_from_file_location(f"minirt_{script}", os.path.join(REPO, "bench", f"{script}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod
