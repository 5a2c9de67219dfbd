"""What the machine is, and whether it was quiet while a run measured: read from /proc and
/sys (Linux), recorded in results.json's metadata (`hardware`, `stability`), and a warning
when it was busy.

- `machine_facts`: CPU model, logical cores, frequency governor and current MHz (where
  the kernel exposes them), kernel release.
- `Snapshot` (taken before and after the run): the kernel's CPU counters (`/proc/stat`:
  busy, idle and steal time of all CPUs, context switches), the load average, and the CPU
  time and context switches of this process and its children (the server, client
  processes: the run's own).
- `Stability.between`: steal as a share of the CPU time that passed; other processes'
  CPU in cores (all CPUs' busy time less the run's own) and their context switches (all
  less the run's own, as counted for the run's processes still alive at the end, so an
  upper bound); the load average before and after. The machine was busy when other
  processes kept more than `OTHER_CORES_BUSY` cores busy on average, or steal was over
  `STEAL_BUSY`: figures from such a run carry other people's noise.
"""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

STEAL_BUSY = 0.05  # steal above 5% of the CPU time: a busy host
OTHER_CORES_BUSY = 0.5  # other processes' CPU, in cores on average over the run
PROC = Path("/proc")
CPUFREQ = Path("/sys/devices/system/cpu/cpu0/cpufreq")


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError:
        return None


def _cpuinfo(field: str) -> str | None:
    text = _read(PROC / "cpuinfo") or ""
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() == field:
            return value.strip()
    return None


def machine_facts() -> dict[str, Any]:
    """The machine's CPU, its frequency policy and the kernel; None where not readable."""
    khz = _read(CPUFREQ / "scaling_cur_freq")
    mhz = _cpuinfo("cpu MHz")
    return {
        "cpu_model": _cpuinfo("model name") or platform.processor() or None,
        "logical_cores": os.cpu_count(),
        "frequency_governor": _read(CPUFREQ / "scaling_governor"),
        "cpu_mhz": round(int(khz) / 1000) if khz and khz.isdigit() else _float(mhz),
        "kernel": platform.release(),
    }


def _float(text: str | None) -> float | None:
    try:
        return None if text is None else round(float(text))
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The machine's and the run's CPU counters at one moment (times in seconds)."""

    busy_s: float  # all CPUs: user, nice, system, irq, softirq, steal
    total_s: float  # all CPUs: the above, idle and iowait
    steal_s: float
    context_switches: int  # all CPUs, since boot
    load_1m: float
    own_cpu_s: float  # this process and its children, alive or ended
    own_context_switches: int  # this process and its children still alive

    @classmethod
    def take(cls) -> Snapshot:
        ticks = os.sysconf("SC_CLK_TCK")
        busy = total = steal = 0.0
        switches = 0
        for line in (_read(PROC / "stat") or "").splitlines():
            name, *values = line.split()
            if name == "cpu":
                # user nice system idle iowait irq softirq steal (guest times are in user)
                counts = [int(v) / ticks for v in values[:8]] + [0.0] * (8 - len(values[:8]))
                user, nice, system, idle, iowait, irq, softirq, steal = counts
                busy = user + nice + system + irq + softirq + steal
                total = busy + idle + iowait
            elif name == "ctxt":
                switches = int(values[0])
        own_s, own_switches = _own_usage()
        return cls(busy, total, steal, switches, os.getloadavg()[0], own_s, own_switches)


def _own_usage() -> tuple[float, int]:
    """CPU seconds of this process and its children (ended ones as the kernel counted them
    for us, live ones each), and the live ones' context switches."""
    ended = os.times()
    seconds = ended.user + ended.system + ended.children_user + ended.children_system
    me = psutil.Process()
    switches = sum(me.num_ctx_switches())
    for child in me.children(recursive=True):
        try:
            times = child.cpu_times()
            seconds += times.user + times.system
            switches += sum(child.num_ctx_switches())
        except psutil.Error:
            continue  # ended meanwhile
    return seconds, switches


@dataclass(frozen=True, slots=True)
class Stability:
    """How quiet the machine was between two snapshots (module docstring)."""

    seconds: float
    load_1m_before: float
    load_1m_after: float
    steal_share: float | None
    other_cpu_cores: float | None
    other_context_switches: int
    busy: bool
    why: str | None

    @classmethod
    def between(cls, before: Snapshot, after: Snapshot, seconds: float) -> Stability:
        cpu_time = after.total_s - before.total_s
        steal = (after.steal_s - before.steal_s) / cpu_time if cpu_time > 0 else None
        own = after.own_cpu_s - before.own_cpu_s
        other = (after.busy_s - before.busy_s - own) / seconds if seconds > 0 else None
        switches = after.context_switches - before.context_switches
        own_switches = after.own_context_switches - before.own_context_switches
        reasons = []
        if other is not None and other > OTHER_CORES_BUSY:
            reasons.append(f"other processes kept {other:.2f} cores busy on average")
        if steal is not None and steal > STEAL_BUSY:
            reasons.append(f"the hypervisor took {steal:.0%} of the CPU time (steal)")
        return cls(
            seconds=seconds,
            load_1m_before=before.load_1m,
            load_1m_after=after.load_1m,
            steal_share=steal,
            other_cpu_cores=None if other is None else max(other, 0.0),
            other_context_switches=max(switches - own_switches, 0),
            busy=bool(reasons),
            why="; ".join(reasons) or None,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def warning(self) -> str | None:
        """The console's and the report's warning, when the machine was busy."""
        if not self.busy:
            return None
        return (
            f"the machine was busy during this run: {self.why} (load average "
            f"{self.load_1m_before:.2f} before, {self.load_1m_after:.2f} after); its "
            "timing figures carry that noise: run again on a quiet machine"
        )
