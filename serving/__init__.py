"""The serving consumer: consumes ``ServeRequest``s, answers each with the small generator or the large
model (logic in :mod:`odia_stream.serving`), publishes ``ServeResponse``s and hot-swaps on
``ModelUpdate``s. Run it with ``odia serve run`` (or ``python -m serving``)."""
