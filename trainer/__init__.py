"""The trainer worker: consumes retrain triggers, fine-tunes the small generator with LoRA
(``odia_stream.training``), gates it against the serving version and publishes ``ModelUpdate``s.
Run it with ``odia trainer run`` (or ``python -m trainer``)."""
