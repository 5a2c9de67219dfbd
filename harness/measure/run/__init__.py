"""The driver's parts, one job each (`harness.measure.driver` orchestrates them): jobs,
scheduling, the run context, client kinds and shards, the measured window, timelines,
joining and bookkeeping. See docs/architecture.md."""
