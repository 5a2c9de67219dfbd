"""CPU lists and pinning (`servers.cpus`): parsed as Linux writes cpusets, checked against
the machine, and what the kernel then runs a pinned server on, read back from it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from errors import UsageError
from harness.measure.server_process import PROJECT_ROOT
from servers.cpus import format_cpus, parse_cpus, usable_cpus


@pytest.mark.parametrize(
    ("text", "cpus"),
    [("0", (0,)), ("1,0", (0, 1)), ("0-3", (0, 1, 2, 3)), ("0-1,3", (0, 1, 3)), (" 2 ", (2,))],
)
def test_cpu_lists_parse_as_cpusets_write_them(text: str, cpus: tuple[int, ...]) -> None:
    assert parse_cpus(text) == cpus
    assert parse_cpus(format_cpus(cpus)) == cpus


@pytest.mark.parametrize("text", ["", "a", "1-", "3-1", "-1", "0,,1", "0.5"])
def test_anything_else_is_refused_with_an_example(text: str) -> None:
    with pytest.raises(UsageError, match="not a CPU list"):
        parse_cpus(text)


def test_a_cpu_the_machine_lacks_is_refused_naming_those_it_has() -> None:
    missing = os.cpu_count() or 1
    with pytest.raises(UsageError, match=f"CPU\\(s\\) {missing} are not available here"):
        usable_cpus(str(missing))


def test_the_server_refuses_a_cpu_list_it_cannot_use_in_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "servers.run", "--cpus", "9999", "--port", "0"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"servers.run: error: --cpus: CPU(s) 9999 are not available here: this machine "
        f"offers {format_cpus(set(range(os.cpu_count() or 1)))}"
    ]
