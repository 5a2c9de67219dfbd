"""Analysing saved results: metrics, versioned results, comparisons."""
