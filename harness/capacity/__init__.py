"""`bench.py capacity`: per transport (and server stack), the most concurrent streams within
an SLO. The pure part: `slo.py` (the SLO check), `assess.py` (a probe's figures and
verdict), `search.py` (the search's next step) and `figures.py` (capacity, streams per
core, memory per stream, the thread limit: what `capacity.json` holds); `run.py` runs the
probes, `report.py`, `chart.py` and `stack_chart.py` show them. The rest of this docstring
is the reference: `capacity.html` prints it.

The question: how many concurrent streams can one server core hold over each transport, and
what does each cost? Per transport, a *probe* is one real benchmark run of that transport
alone at one concurrency, on a fresh server process; the *capacity* is the largest
concurrency whose probe stays within the SLO. These definitions are the reference (the
capacity report prints them):

- SLO: a probe passes when every limit holds. Added delay p99 (client arrival minus server
  emit, every token) at most `--slo-added-p99-ms` (50 ms), plus the delay a transport adds
  by design unless `--strict`: short polling's poll interval (a token waits up to one
  interval for the next poll), a webhook's `batch_ms`. Source gap error p99 (how far the
  mock's actual emit gaps were from its plan) at most `--slo-gap-error-p99-ms` (5 ms): a
  server too busy to emit on time fails. Tokens lost plus streams failed at most
  `--slo-lost` (0). TTFT p99 at most `--slo-ttft-factor` (1.2) times the unloaded value,
  and never less than the unloaded value plus `--slo-ttft-slack-ms` (5 ms); for short
  polling and batched webhooks plus their designed wait too (the first token waits for it
  as every other does; `--strict` drops that allowance).
- Steady part: the SLO's timing figures (added delay, gap error, TTFT) are judged on the
  streams after a probe's first wave. The first `concurrency` streams start in the same
  instant, a burst of new connections no real server sees; `--streams-per-probe` (2) runs
  as many again after them, each starting as one ends. Lost tokens, failed streams, CPU
  and throughput count the whole probe.
- Unloaded: concurrency 1, measured first for every transport (`--unloaded-streams`
  streams, one at a time). The mock draws each stream's first-token delay from a
  distribution, so a probe's TTFT p99 is compared with what the same streams would show
  unloaded: the p99 of their planned first-token delays plus the transport's own
  first-token overhead at concurrency 1 (p99 of TTFT minus the planned delay).
- Raised limits: a capacity search asks what load does. When the unloaded probe (after
  its re-run) still misses a timing limit, the machine or the transport misses it without
  any load, so for that transport's search the limit becomes the unloaded value plus the
  limit (gap error p99 7 ms unloaded: at most 12 ms), and the results say so. Unless
  `--strict`: then, as when lost tokens or failed streams fail unloaded, the capacity is 0
  and the limiting figure says why.
- Search: grow geometrically (x2) from `--start` until a probe fails or `--max` passes,
  then bisect between the highest pass below the lowest fail and that fail, until the gap
  is within 10% of the fail or `--max-probes` probes have run. The unloaded probe is the
  pass below everything: if `--start` fails, bisection continues down towards 1.
- Noise: a probe that fails on timing figures alone (added delay, gap error, TTFT) is re-run
  once, and the re-run's verdict counts (both are kept and shown). Lost tokens and failed
  streams are never re-run: they are counts, not noise. On a machine shared with other
  work a disturbance misses a limit by far more than a small margin (seen: gap error p99
  12 ms against 5 with one stream and an idle server), so every timing failure gets its
  second chance; real overload fails twice. Each transport also gets an equal share of
  what is left of `--time-budget-s` when its turn comes; a search that runs out of time
  reports what it found.
- capacity: the largest passing concurrency below the lowest failing one (a pass above a
  fail, which only noise makes, is not believed); 0 when even one stream fails the SLO.
- limiting figure: what failed at the lowest failing concurrency (the probe just above
  the capacity), worst first.
- server cores busy: server CPU seconds (user + system) / the measured window's seconds,
  at the capacity probe; client cores busy likewise for the benchmark's event-loop thread.
- streams per core: capacity / server cores busy: how many such streams one core holds,
  extrapolated linearly from this load. Results record the server processes
  (`PhaseRecord.server_processes`, 1: one server); the cores are theirs together, each
  server's worker processes included (a stack's master and workers: the CPU of the
  server's whole process tree, `harness.measure.process_tree`).
- stacks: `--stack a,b,...` searches every transport on every server stack (`stacks.py`),
  a *cell* each, with the same SLO and search; one transport's stacks are searched one
  after another. The table has a row per cell and the stack chart a group per transport,
  a bar per stack.
- thread limit: a threaded stack (gunicorn's gthread worker) serves workers x threads
  requests at once, and a push stream holds its thread from start to end, so streams
  beyond the limit wait for a thread. The limit *bound* the capacity when the capacity
  is within 90% of it, at most it, and the first failing probe lay above it: the cell ran
  out of threads, not of CPU (raise `--threads` to see the CPU's limit).
- KiB per stream: the least-squares slope of the server's peak resident memory (VmHWM, a
  fresh server per probe) against concurrency over every probe whose streams all
  completed, with its standard error (±). It includes what the server keeps of each
  finished stream until the harness fetches its timeline after the window. Over a narrow
  range of concurrencies the allocator's own noise (about a MiB) dominates: trust it when
  the error is small against it.
- tok/s at capacity: tokens delivered to all clients together / the window, at the
  capacity probe; server CPU per 1k tokens likewise: the bill per token at that load.

Client and server share this machine's cores, so a client that saturates first caps the
capacity too: compare client cores busy with the server's.
"""
