"""The applications over the domain and the workers: the ``odia`` command line (``odia/cli``),
the benchmarks (``odia/bench``), the main job (:mod:`odia.demo_loop`), the worker supervisor,
the replay producer and the dashboard server.

This is the top layer: it may import ``odia_stream`` (the domain), ``kafka_runtime`` (Kafka) and
the workers (``agents``, ``trainer``, ``serving``); none of them imports it.
"""
