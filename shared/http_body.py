"""Reading a request body on a service's HTTP server (faust's aiohttp driver) without
letting a sender make it hold more than it will accept."""

from __future__ import annotations

from typing import Any


async def read_bounded(content: Any, limit: int) -> bytes:
    """The body, or its first ``limit + 1`` bytes (enough to refuse it as too large)."""
    body = b""
    while len(body) <= limit:
        chunk = await content.read(limit + 1 - len(body))
        if not chunk:
            break
        body += chunk
    return body
