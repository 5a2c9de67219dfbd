"""The probe's findings table now lives in `wire.problems` (pure, so `bench.py run`'s relay
and `direct` name upstream problems with the same codes); re-exported here."""

from __future__ import annotations

from wire.problems import RULES, Finding, Rule, Severity, finding

__all__ = ["RULES", "Finding", "Rule", "Severity", "finding"]
