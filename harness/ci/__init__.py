"""The regression check: baselines and the check against them."""
