"""Helpers of scripts/bench_overhead.py: shared fakes (core), one adapter per framework, the worker."""
