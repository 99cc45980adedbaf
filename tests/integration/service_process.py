"""One NTX service as the separate OS process operators run (``ntx service NAME``),
for black-box tests: its own schema (``NTX_SCHEMA_PREFIX``), an optional simulated
clock file, its HTTP port, its log file, and the signals a supervisor sends."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from shared.clock import FileClock
from shared.infra import free_port


class ServiceProcess:
    def __init__(
        self,
        name: str,
        infra: Any,
        prefix: str,
        log: Path,
        *,
        clock: FileClock | None = None,
        **env: str,
    ):
        self.name, self.port, self.log = name, free_port(), log
        self.env = {
            **os.environ,
            "NTX_KAFKA_BOOTSTRAP": infra.bootstrap,
            "NTX_DATABASE_URL": infra.database_url,
            "NTX_SCHEMA_PREFIX": prefix,
            "NTX_HTTP_PORT": str(self.port),
            **({"NTX_CLOCK_FILE": str(clock.path)} if clock is not None else {}),
            **env,
        }
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as out:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "service", self.name],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def call(
        self, path: str, body: bytes | None = None, token: str | None = None
    ) -> tuple[int, Any]:
        """The status and the (JSON, else text) body of one request; status 0 when
        nothing answers."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", body, headers)
        try:
            with urllib.request.urlopen(req, timeout=5) as answer:
                status, text = answer.status, answer.read().decode()
        except urllib.error.HTTPError as refused:
            status, text = refused.code, refused.read().decode()
        except OSError:
            return 0, ""
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_for(self, path: str, status: int, timeout: float = 120.0) -> Any:
        """The body of the first answer ``status`` to ``path``, polling; fails with
        the log's tail if the process dies or time runs out."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.running(), self.died()
            got, body = self.call(path)
            if got == status:
                return body
            assert time.monotonic() < deadline, f"{path} never answered {status}; {self.died()}"
            time.sleep(0.2)

    async def wait_healthy(self, timeout: float = 90.0) -> None:
        await asyncio.to_thread(self.wait_for, "/health", 200, timeout)

    def kill(self) -> None:
        """SIGKILL and reap (no-op when not running)."""
        if self.running():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def died(self) -> str:
        code = self.proc.returncode if self.proc is not None else None
        return f"{self.name} exit {code}; log tail:\n{self.tail()}"

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]
