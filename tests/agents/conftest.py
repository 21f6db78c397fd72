"""Fixtures for Kafka adapter tests (``read_topic`` lives in the root conftest)."""
