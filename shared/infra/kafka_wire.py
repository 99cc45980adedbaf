"""A Kafka wire ping over a plain socket: whether something on a port speaks Kafka and
advertises a broker, asked in the oldest request versions every broker answers."""

from __future__ import annotations

import socket
import struct


def _kafka_request(sock: socket.socket, api_key: int, version: int, body: bytes, cid: int) -> bytes:
    client = b"ntx-infra"
    header = struct.pack(">hhih", api_key, version, cid, len(client)) + client
    payload = header + body
    sock.sendall(struct.pack(">i", len(payload)) + payload)
    size = struct.unpack(">i", _recv_exact(sock, 4))[0]
    data = _recv_exact(sock, size)
    if struct.unpack(">i", data[:4])[0] != cid:
        raise ValueError("correlation id mismatch")
    return data[4:]


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise OSError("connection closed")
        buf += chunk
    return bytes(buf)


def kafka_ping(host: str, port: int, timeout: float = 2.0) -> int:
    """ApiVersions v0 then Metadata v4 over a plain socket (the oldest versions both
    Tansu and Apache Kafka 4 answer): the broker speaks Kafka and knows at least one
    broker to advertise. Returns how many it lists; raises on anything else."""
    try:
        return _ping(host, port, timeout)
    except struct.error as exc:
        raise ValueError(f"malformed Kafka response: {exc}") from exc


def _ping(host: str, port: int, timeout: float) -> int:
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.settimeout(timeout)
        versions = _kafka_request(sock, 18, 0, b"", 1)
        error = struct.unpack(">h", versions[:2])[0]
        if error:
            raise ValueError(f"ApiVersions error {error}")
        # v4 body: all topics (null array), no auto-creation; the answer starts with
        # throttle_time_ms, then the broker array
        metadata = _kafka_request(sock, 3, 4, struct.pack(">ib", -1, 0), 2)
        brokers = int(struct.unpack(">i", metadata[4:8])[0])
        if brokers < 1:
            raise ValueError("metadata lists no broker")
        return brokers
