"""The supervisor's idle form (minirt/process/idle.py) runs beside every detached container
for its whole life: it must import nothing beyond what it needs to wait and log (issue 15)."""

import os
import subprocess
import sys

from minirt.process import supervisor

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# posix, not os (os.path, stat and collections.abc cost ~150 KiB per supervisor); select for poll
ALLOWED = {"minirt", "minirt.process", "minirt.process.idle", "minirt.process.logfile", "select"}


def _modules(code: str) -> set[str]:
    probe = f"import sys; base = set(sys.modules); {code}; print(' '.join(sorted(set(sys.modules) - base)))"
    run = subprocess.run([sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=True)
    return set(run.stdout.split())


def test_the_idle_form_imports_only_what_it_waits_and_logs_with():
    # the boot code the supervisor execs, minus the call
    boot = supervisor.IDLE_CODE.format(REPO).replace("; idle.main(sys.argv[2:])", "")
    assert _modules(boot) - ALLOWED == set()


def test_the_first_log_line_adds_only_time_and_the_c_json_encoder(tmp_path):
    code = (f"sys.path.insert(0, {REPO!r}); from minirt.process.logfile import LogWriter; "
            f"w = LogWriter({str(tmp_path)!r}); w.write('stdout', b'hello\\n'); w.close()")  # fmt: skip
    assert _modules(code) - ALLOWED <= {"time", "minirt.jsonenc", "_json"}
    assert '"log":"hello\\n"' in (tmp_path / "container.log").read_text().replace(" ", "")
