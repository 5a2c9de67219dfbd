"""Presenting: charts, the HTML report, the console."""
