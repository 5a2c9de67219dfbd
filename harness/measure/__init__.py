"""Measuring: scenarios, the driver, the server process, raw records, trace recording."""
