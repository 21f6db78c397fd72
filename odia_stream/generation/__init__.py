"""The small generator: base model (packaged SmolLM2 by default), the backend interface, the transformers backend."""
