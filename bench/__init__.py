"""Benchmarks: each prints its figures beside a baseline measured in the same run (a ratio),
because the machine is shared and noisy. Results are recorded in docs/performance.md."""
