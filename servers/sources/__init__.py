"""Token sources: the mock (engine, presets, corpus), trace replay, live OpenAI, and the
source spec."""
