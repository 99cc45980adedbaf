"""Creating the topics of :data:`shared.topics.ALL_TOPICS` (``ntx migrate`` and the
embedded stack do; services may not: least privilege on the broker)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from typing import Any, TypedDict

from shared.topics import ALL_TOPICS, Topic


class TopicOptions(TypedDict, total=False):
    """Replication for :func:`create_topics`."""

    replication_factor: int
    min_insync_replicas: int


async def create_topics(
    bootstrap: str,
    topics: Iterable[Topic | str] | None = None,
    *,
    partitions: int = 1,
    replication_factor: int | None = None,
    min_insync_replicas: int | None = None,
    timeout: float = 30.0,
    **client_options: Any,
) -> list[str]:
    """Create ``topics`` (default: every topic in ``ALL_TOPICS``, with its partition
    count; plain names get ``partitions``), with ``replication_factor`` copies of which
    ``min_insync_replicas`` must hold a write before it is acknowledged (defaults: the
    settings, 3 and 2). Topics that exist already are left as they are. Returns the
    names created now. ``client_options`` go to the aiokafka admin client (security)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

    from shared.settings import get_settings

    settings = get_settings()
    rf = replication_factor or settings.kafka_replication_factor
    isr = min_insync_replicas or settings.kafka_min_insync_replicas
    wanted = [
        (t, partitions) if isinstance(t, str) else (t.name, t.partitions)
        for t in (ALL_TOPICS if topics is None else topics)
    ]
    if not wanted:
        return []
    deadline = time.monotonic() + timeout
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap, request_timeout_ms=int(timeout * 1000), **client_options
    )
    await admin.start()
    try:
        pending = dict(wanted)
        created: list[str] = []
        while True:
            new = [
                NewTopic(
                    n, p, replication_factor=rf, topic_configs={"min.insync.replicas": str(isr)}
                )
                for n, p in pending.items()
            ]
            response = await admin.create_topics(new, timeout_ms=int(timeout * 1000))
            retry: dict[str, int] = {}
            for name, code, *rest in response.topic_errors:
                if code == 0:
                    created.append(name)
                    continue
                error = for_code(code)
                if error is TopicAlreadyExistsError:
                    continue
                if getattr(error, "retriable", False) and time.monotonic() < deadline:
                    retry[name] = pending[name]
                    continue
                message = rest[0] if rest else None
                raise KafkaError(f"create topic {name}: {error.__name__} {message or ''}".strip())
            if not retry:
                return created
            pending = retry
            await asyncio.sleep(0.2)
    finally:
        await admin.close()
