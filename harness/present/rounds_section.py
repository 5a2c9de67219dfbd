"""The report's section on a repeated run's rounds (`repeat`): per transport, each round's
figures with its place in the run's order, and the figures that drift across rounds
(`harness.analyse.repeats`)."""

from __future__ import annotations

from harness.analyse.repeats import ROUND_FIGURES, drifting, rounds_of
from harness.analyse.results import RunResult
from harness.present.html import esc, number, transport_cell


def rounds_section(run: RunResult) -> str:
    """`<h2>Rounds</h2>` and a table per point, or "" for a run without repeats."""
    points = [p for p in run.points if any(len(ph.rounds) > 1 for ph in p.phases.values())]
    if not points:
        return ""
    body = [
        "<h2>Rounds</h2>",
        "<p>Each transport's phase ran once per round, in rounds (every transport, then "
        "every transport again), so a machine that drifts mid-run moves every transport's "
        "later rounds alike. <i>order</i> is the phase's place in the run (0: first). "
        "<b>Drift</b> marks a figure that moved the same way from round to round by more "
        "than a round's own interval is wide (half of it, on average over the rounds).</p>",
    ]
    head = '<th class="name">transport</th><th>round</th><th>order</th>' + "".join(
        f"<th>{esc(label)}</th>" for label, _ in ROUND_FIGURES
    )
    for point in points:
        if run.is_sweep:
            body.append(f"<h3>{esc(f'{run.sweep_axis} = {point.value}')}</h3>")
        rows, notes = [], []
        for name, phase in point.phases.items():
            rounds = rounds_of(phase)
            for k, figures in enumerate(rounds):
                first = transport_cell(name) if k == 0 else '<td class="name"></td>'
                cells = "".join(f"<td>{number(v)}</td>" for v in figures.values)
                rows.append(
                    f"<tr>{first}<td>{figures.repeat + 1}</td><td>{figures.position}</td>"
                    f"{cells}</tr>"
                )
            drift = drifting(rounds)
            if drift:
                notes.append(f"<li><b>{esc(name)}</b>: drift in {esc(', '.join(drift))}</li>")
        body.append(f'<table class="rounds"><tr>{head}</tr>{"".join(rows)}</table>')
        body.append(f"<ul>{''.join(notes)}</ul>" if notes else "<p>No figure drifted.</p>")
    return "".join(body)
