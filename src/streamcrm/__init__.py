"""streamcrm: a real-time CRM event processor.

The pure core (``events``, ``state``, ``ingest``, ``synthetic``) decides; the shell
(``app``, ``serving``, ``cli``) moves bytes between Kafka, Faust tables and Redis.
"""

__version__ = "0.1.0"
