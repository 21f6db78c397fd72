"""The ``odia`` command: one entry point for the broker, topics, agents, replay and benchmarks."""

from odia.cli.main import app, main

__all__ = ["app", "main"]
