"""Content-addressed LoRA adapters: the registry with its promoted pointer and rollback, and random
adapters for tests and benchmarks (an adapter's identity, digest and checks live in ``generation``)."""
