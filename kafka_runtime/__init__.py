"""The Kafka runtime layer: every Kafka client of odia-stream is built here.

Workers (``agents/``, ``trainer/``, ``serving/``) and the applications over them (``odia/``: the
CLI, the main job, benchmarks) import this package; they never import each other for Kafka. The
domain (``odia_stream/``) knows no Kafka at all.

- :mod:`kafka_runtime.clients`: producers and consumers from ``KafkaSettings``, group-less topic
  readers, consumer-group lag.
- :mod:`kafka_runtime.publishing`: producing a wire model (``schemas``) to a topic, with or without
  waiting for the broker's acknowledgement.
- :mod:`kafka_runtime.topics`: topic administration (create with partition counts, delete).
- :mod:`kafka_runtime.idle_pacing`: idle consumers that do not spin on the local broker.
- :mod:`kafka_runtime.local_broker`: the local development broker (``noida-db``).
"""

from kafka_runtime.clients import TopicReader, group_lag, make_consumer, make_producer, member_id
from kafka_runtime.publishing import PublishError, deliver_model, produce_model, publish_model

__all__ = [
    "PublishError",
    "TopicReader",
    "deliver_model",
    "group_lag",
    "make_consumer",
    "make_producer",
    "member_id",
    "produce_model",
    "publish_model",
]
