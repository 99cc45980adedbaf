"""faust's Kafka transport with one change, for the Tansu fallback only: how long a
consumer's fetch may wait for new records (faust fixes it at 1.5 s).

Apache Kafka answers a fetch as soon as records arrive, so there the wait only bounds
idle polling (measured: the same pipeline wall time at 500 and 1,500 ms, and more CPU
at 20 ms); NTX keeps faust's own. Tansu holds every fetch for the full wait, which
would add up to 1.5 s per hop between services, so the fallback stack sets
``NTX_KAFKA_FETCH_MAX_WAIT_MS``.
"""

from __future__ import annotations

from typing import Any

import faust
from faust.transport.drivers import aiokafka as driver


def app_class(fetch_max_wait_ms: int | None) -> type[faust.App]:
    """A ``faust.App`` whose consumers fetch with ``fetch_max_wait_ms`` (None: faust's
    own app, unchanged)."""
    if fetch_max_wait_ms is None:
        return faust.App

    class ConsumerThread(driver.AIOKafkaConsumerThread):
        def _create_worker_consumer(self, transport: Any) -> Any:
            consumer = super()._create_worker_consumer(transport)
            # read by AIOKafkaConsumer.start() when it builds its fetcher
            consumer._fetch_max_wait_ms = fetch_max_wait_ms
            return consumer

    class FetchConsumer(driver.Consumer):
        def _new_consumer_thread(self) -> Any:
            return ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    class Transport(driver.Transport):
        Consumer = FetchConsumer

    class App(faust.App):
        def _new_transport(self) -> Any:
            return Transport(self.conf.broker_consumer, self)

    return App
