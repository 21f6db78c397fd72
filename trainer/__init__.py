"""The trainer worker (consumes retrain triggers, fine-tunes the small generator with LoRA,
gates it and publishes ``ModelUpdate``s). Not implemented yet: see the trainer issue."""
