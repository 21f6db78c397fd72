"""Content-addressed LoRA adapters: their digest, the registry with its promoted pointer and rollback."""
