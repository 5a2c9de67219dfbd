"""Phase bookkeeping: what a phase records of how it ran (`PhaseSetup`) and its
`PhaseRecord`s, one per transport, from what its window measured.

Sequential order gives each transport its own window and its own CPU figures. Interleaved
order (several transports in one window) cannot split the CPU between them: each phase's
own CPU is then None, and the window's totals are kept in `PhaseSetup.shared_window`.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness.measure.records import (
    PhaseRecord,
    PhaseSetup,
    RawFloor,
    RequestRecord,
    SharedWindow,
    SweepValue,
)
from harness.measure.run.window import Measured
from harness.measure.scenario import Scenario
from transports import DIRECT


def phase_setup(
    scenario: Scenario,
    transports: Sequence[str],
    client_processes: int,
    measured: Measured,
    servers: int,
    records: Sequence[RequestRecord],
    raw_client: RawFloor | None = None,
) -> PhaseSetup:
    """How the phase ran: order, path, processes (with the measured streams each of
    `servers` served), load (`open`, with the `rate` per transport and the `arrivals`, or
    `closed`), a fault plan's resume grace, the raw client's floor, a shared window's CPU."""
    window = measured.window
    shared = len(transports) > 1
    open_loop = scenario.rate > 0
    faults = scenario.faults
    served = [measured.routes.get(r.stream_id, 0) for r in records if r.transport != DIRECT]
    return PhaseSetup(
        order="interleaved" if shared else "sequential",
        path=scenario.path,
        server_processes=servers,
        client_processes=client_processes,
        load="open" if open_loop else "closed",
        rate=scenario.rate if open_loop else None,
        arrivals=scenario.arrivals if open_loop else None,
        resume_grace_s=faults.resume_grace_s
        if faults.drop_at_token or faults.leave_at_token
        else None,
        streams_per_server=[served.count(k) for k in range(servers)] if servers > 1 else None,
        client_cpu_s_per_process=measured.client_cpu_s_per_process,
        raw_client=raw_client,
        shared_window=SharedWindow(window.server_cpu_s, window.client_cpu_s) if shared else None,
    )


def phase_records(
    transports: Sequence[str],
    measured: Measured,
    records: Sequence[RequestRecord],
    setup: PhaseSetup,
    sweep_value: SweepValue | None,
) -> list[PhaseRecord]:
    """One `PhaseRecord` per transport of the window, with its own requests."""
    window = measured.window
    shared = len(transports) > 1
    return [
        PhaseRecord(
            transport=transport,
            window_start_ns=window.start_ns,
            window_end_ns=window.end_ns,
            server_cpu_s=None if shared else window.server_cpu_s,
            client_cpu_s=None if shared else window.client_cpu_s,
            server_rss_bytes=window.server_rss_bytes,
            sweep_value=sweep_value,
            requests=[r for r in records if r.transport == transport],
            setup=setup,
            browser=measured.browser,
        )
        for transport in transports
    ]
