"""Kafka adapters of odia-stream: the Faust app and its agents, topic administration and the
replay producer. All decisions are delegated to ``odia_stream``."""
