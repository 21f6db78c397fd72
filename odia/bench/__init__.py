"""Benchmarks of odia-stream components (run as modules; results go to docs/)."""
