"""Analysis and reporting need none of the server's packages: a machine that only reads
results (a notebook, a CI job that compares runs) can lack FastAPI, Starlette and uvicorn.

The check runs in a fresh interpreter in which importing any of them fails, as it would
where they are not installed."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from harness.measure.server_process import PROJECT_ROOT

SERVER_PACKAGES = ("fastapi", "starlette", "uvicorn")
FIXTURE = Path(__file__).parent / "fixtures" / "results-v1"

# Installed before anything else runs: every import of a server package fails.
BLOCKER = f"""
import importlib.abc, sys
class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {SERVER_PACKAGES!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None
sys.meta_path.insert(0, NotInstalled())
"""


def run_without_server(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", BLOCKER + code],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_blocker_really_blocks() -> None:
    done = run_without_server("import fastapi")
    assert done.returncode != 0 and "No module named 'fastapi'" in done.stderr


def test_analysis_and_report_modules_import_without_the_server() -> None:
    done = run_without_server(
        "import harness.analyse.results, harness.present.report, transports\n"
        "assert not any(m.split('.')[0] in "
        f"{SERVER_PACKAGES!r} for m in sys.modules), sorted(sys.modules)\n"
        "print(len(transports.TRANSPORTS))"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "7"


def test_bench_report_redraws_a_report_without_the_server(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(FIXTURE, run_dir)
    done = run_without_server(
        f"import sys; sys.argv = ['bench.py', 'report', {str(run_dir)!r}]\n"
        "import runpy; runpy.run_path('bench.py', run_name='__main__')"
    )
    assert done.returncode == 0, done.stderr
    assert (run_dir / "report.html").stat().st_size > 1000
