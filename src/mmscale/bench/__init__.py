"""Benchmarks: each returns flat rows (dataclasses that serialize to JSON) measuring ours and a
baseline in the same run; statistics over rows are pure functions in ``mmscale.stats``."""
