"""docs/walkthrough.md is generated from a real `minirt run --explain` (tools/walkthrough): a
new run must print exactly what the committed page shows, so the page cannot drift from the
code that makes the changes."""

import subprocess
import sys

from tests.conftest import REPO


def test_walkthrough_matches_a_new_run():
    r = subprocess.run([sys.executable, f"{REPO}/tools/walkthrough", "--check"], capture_output=True, text=True,
                       timeout=120, cwd=REPO)  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
