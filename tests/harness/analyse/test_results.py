"""Saved results across schema versions: a version 1 folder (tests/fixtures/results-v1, saved
by the version 1 code from a real `bench.py run`, trimmed to two transports of two streams)
loads, migrates and works with every command; a version newer than this code, or none, is
refused with a message saying what to do."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from synthetic_runs import synthetic_sweep

from bench import main
from errors import ResultsError
from harness.analyse.results import (
    MIGRATIONS,
    SCHEMA_VERSION,
    load_run,
    migrate,
    save_run,
    to_json,
    transport_kind,
)
from harness.ci.baseline import load_baseline
from transports import DIRECT, TRANSPORTS

ROOT = Path(__file__).resolve().parents[3]
V1_FIXTURE = ROOT / "tests" / "fixtures" / "results-v1"
V1_KINDS = {"short_poll": "poll", "sse": "push"}


@pytest.fixture
def v1_dir(tmp_path: Path) -> Path:
    """A copy of the version 1 run folder (commands write next to results.json)."""
    return Path(shutil.copytree(V1_FIXTURE, tmp_path / "v1"))


def v1_document() -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((V1_FIXTURE / "results.json").read_bytes())
    return data


def write_document(data: dict[str, Any], run_dir: Path) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "results.json").write_bytes(orjson.dumps(data))
    return run_dir


def phase_kinds(data: dict[str, Any]) -> dict[str, Any]:
    return {name: entry["phase"].get("kind") for name, entry in data["transports"].items()}


def test_the_fixture_is_a_version_1_file_without_kinds() -> None:
    data = v1_document()
    assert data["schema_version"] == 1
    assert phase_kinds(data) == {"short_poll": None, "sse": None}


def test_version_1_migrates_to_the_current_version_with_kinds_from_the_registry() -> None:
    assert SCHEMA_VERSION == len(MIGRATIONS) + 1 == 4
    data = migrate(v1_document())
    assert data["schema_version"] == SCHEMA_VERSION
    assert phase_kinds(data) == V1_KINDS
    assert {name: str(TRANSPORTS.get(name).kind) for name in V1_KINDS} == V1_KINDS


def test_version_1_of_an_unknown_transport_gets_its_kind_from_requests_per_stream() -> None:
    """A transport this checkout does not register: more than one request per stream polls."""
    data = v1_document()
    transports = data["transports"]
    transports["old_poll"] = transports.pop("short_poll")
    transports["old_push"] = transports.pop("sse")
    transports[DIRECT] = orjson.loads(orjson.dumps(transports["old_push"]))
    assert all(r["requests"] > 1 for r in transports["old_poll"]["phase"]["requests"])
    assert all(r["requests"] == 1 for r in transports["old_push"]["phase"]["requests"])
    assert phase_kinds(migrate(data)) == {"old_poll": "poll", "old_push": "push", DIRECT: None}


def test_a_version_1_sweep_gets_kinds_at_every_point() -> None:
    data = to_json(synthetic_sweep("concurrency", [1, 4]))
    data["schema_version"] = 1
    for point in data["points"]:
        for entry in point["transports"].values():
            del entry["phase"]["kind"]
    migrated = migrate(data)
    for point in migrated["points"]:
        assert {n: e["phase"]["kind"] for n, e in point["transports"].items()} == {
            t.name: str(t.kind) for t in TRANSPORTS
        }


def test_the_version_1_folder_loads_with_kinds(v1_dir: Path) -> None:
    run = load_run(v1_dir)
    assert run.kinds == V1_KINDS
    assert [len(phase.requests) for phase in run.phases.values()] == [2, 2]
    assert run.summaries["short_poll"].requests_per_stream > 1


def test_a_saved_run_records_kinds_and_the_current_version(v1_dir: Path, tmp_path: Path) -> None:
    save_run(load_run(v1_dir), tmp_path / "v2")
    data = orjson.loads((tmp_path / "v2" / "results.json").read_bytes())
    assert data["schema_version"] == SCHEMA_VERSION
    assert phase_kinds(data) == V1_KINDS
    assert load_run(tmp_path / "v2").kinds == V1_KINDS


def test_report_on_a_version_1_folder_writes_the_page(
    v1_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(v1_dir)]) == 0, capsys.readouterr().err
    assert (v1_dir / "report.html").stat().st_size > 0
    assert orjson.loads((v1_dir / "results.json").read_bytes())["schema_version"] == 1


def test_compare_and_check_take_a_version_1_folder(
    v1_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    current = tmp_path / "v2"
    save_run(load_run(v1_dir), current)
    out = tmp_path / "cmp"
    assert main(["compare", str(v1_dir), str(current), "--out", str(out)]) == 0
    assert (out / "compare.html").is_file()
    baseline = tmp_path / "baseline.json"
    assert main(["baseline", str(v1_dir), "--out", str(baseline)]) == 0
    assert main(["check", str(v1_dir), "--baseline", str(baseline), "--reruns", "0"]) == 0
    assert "regression check passed" in capsys.readouterr().out


def test_the_committed_ci_baseline_still_loads() -> None:
    """The baseline has its own schema (harness.ci.baseline), untouched by results versions."""
    baseline = load_baseline(ROOT / "results" / "baseline.json")
    assert set(baseline.transports) == set(TRANSPORTS.names())


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (
            SCHEMA_VERSION + 1,
            f"has schema_version {SCHEMA_VERSION + 1}, newer than this tokenwire reads "
            f"(versions 1 to {SCHEMA_VERSION}); update tokenwire (git pull, then pip install "
            "-e .) to read it",
        ),
        (None, "has no schema_version: it is not a tokenwire results.json"),
        (0, "has schema_version 0, which no tokenwire writes"),
        ("2", "has schema_version '2', which no tokenwire writes"),
        (True, "has schema_version True, which no tokenwire writes"),
    ],
    ids=["newer", "missing", "zero", "text", "bool"],
)
def test_an_unreadable_version_is_refused_saying_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], version: object, message: str
) -> None:
    data = to_json(load_run(V1_FIXTURE))
    if version is None:
        del data["schema_version"]
    else:
        data["schema_version"] = version
    run_dir = write_document(data, tmp_path / "run")
    with pytest.raises(
        ResultsError, match="^" + re.escape(str(run_dir / "results.json"))
    ) as refused:
        load_run(run_dir)
    assert message in str(refused.value)
    assert main(["report", str(run_dir)]) == 2  # a user error: one line, exit status 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_a_document_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(ResultsError, match="has no schema_version"):
        migrate([1, 2], "x.json")


def test_transport_kind_of_direct_is_none() -> None:
    assert transport_kind(DIRECT, [1, 1]) is None
    assert transport_kind("sse", [5, 5]) == "push"  # the registry wins over request counts
