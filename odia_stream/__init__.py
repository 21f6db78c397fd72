"""odia-stream: the domain of the online ODIA learner.

Pure, typed building blocks (normalising, NER templates, embedding, clustering, the
cluster store, labelling, dataset building, routing, evaluation, settings). Processes
(``agents/``, ``trainer/``, ``serving/``) only wire Kafka to these objects.
"""

__version__ = "0.1.0"
