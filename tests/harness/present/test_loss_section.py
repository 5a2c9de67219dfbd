"""The report's packet-loss section: per point and transport, the link's drops each way,
TCP's retransmissions towards the clients, each HTTP/3 stream's QUIC losses, as recorded;
nothing for a run without an emulated link or QUIC streams."""

from __future__ import annotations

from pathlib import Path

from synthetic_runs import STREAMS, synthetic_run, synthetic_sweep

from harness.analyse.results import load_run, save_run
from harness.present.loss_section import loss_section


def test_a_run_without_loss_has_no_section() -> None:
    assert loss_section(synthetic_run()) == ""


def test_each_point_shows_drops_retransmissions_and_quic_losses(tmp_path: Path) -> None:
    run = synthetic_sweep("path", ["nginx-h2+net:loss=2%", "net:loss=2%"])
    tcp, quic = run.points
    for phase in tcp.phases.values():
        phase.path_parameters = {
            "net:loss=2%": {
                "forwarder_stats": {"up": {"lost": 7}, "down": {"lost": 11, "queue_drops": 0}},
                "relay_stats": {"client_retransmits": 10, "client_data_segments": 500},
            }
        }
        for record in phase.requests:
            record.http_version = "HTTP/2"
    for phase in quic.phases.values():
        phase.path_parameters = {
            "net:loss=2%": {"forwarder_stats": {"up": {"lost": 3}, "down": {"lost": 4}}}
        }
        for k, record in enumerate(phase.requests):
            record.http_version, record.packets_lost = "HTTP/3", k  # 0 .. STREAMS - 1
    save_run(run, tmp_path)
    html = loss_section(load_run(tmp_path))
    assert html.startswith("<h2>Packet loss</h2>")
    assert html.count("<table>") == 2
    assert html.count("the link dropped 7 packets up; the link dropped 11 packets down") == 1
    assert "TCP retransmitted 10 of 500 segments to clients" in html
    assert "the link dropped 3 packets up; the link dropped 4 packets down." in html
    median = (STREAMS - 1) / 2
    assert f"<td>HTTP/3</td><td>{median:.2f} / {STREAMS - 1}</td>" in html
    assert "<td>HTTP/2</td><td>–</td>" in html
    assert "<td>HTTP/2</td>" in html and "<td>HTTP/3</td>" in html
