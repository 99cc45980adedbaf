"""``ntx run``: the embedded broker and PostgreSQL (unless configured elsewhere), the
migrations, and the services as separate processes, each connected as
its own database role and restarted if it dies, until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from services.bootstrap import SERVICES, load_spec
from services.gateway.clients import DEV_TOKEN_FILE, dev_client_env
from services.supervisor import Supervisor
from shared import db, pgpass
from shared.infra import EmbeddedStack, create_topics, free_port
from shared.secrets import secret
from shared.settings import ENDPOINTS_FILE, write_endpoints

#: A service that exits while starting is started again (on a new port) this often.
MAX_START_RETRIES = 3


@dataclass
class ServiceProcesses:
    """Three ``ntx service NAME`` children sharing one environment."""

    env: dict[str, str]
    log_dir: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    def start(self, name: str) -> subprocess.Popen:
        port = self.ports.setdefault(name, free_port())
        env = {**self.env, "NTX_HTTP_PORT": str(port)}
        with open(self.log_dir / f"{name}.log", "ab") as log:  # the child keeps its own fd
            proc = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "service", name],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.procs[name] = proc
        return proc

    def start_all(self) -> None:
        for name in SERVICES:
            self.start(name)

    def health(self, name: str) -> dict | None:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.ports[name]}/health", timeout=2
            ) as r:
                return json.loads(r.read())
        except (OSError, ValueError):
            return None

    def wait_healthy(self, timeout: float = 90.0, *, assigned: bool = False) -> bool:
        """Until every service answers ok (and, with ``assigned``, consumes partitions:
        its consumer group has formed). One that exits meanwhile is started again."""
        deadline, restarts = time.monotonic() + timeout, 0
        while time.monotonic() < deadline:
            found = {n: self.health(n) or {} for n in self.procs}
            if all(
                h.get("ok") and (h.get("partitions") or not assigned or not _consumes(n))
                for n, h in found.items()
            ):
                return True
            for name, proc in list(self.procs.items()):
                if proc.poll() is not None:
                    if restarts >= MAX_START_RETRIES:
                        return False
                    # most often its HTTP port was taken between choosing and binding it
                    restarts += 1
                    self.ports.pop(name, None)
                    self.start(name)
            time.sleep(0.5)
        return False

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int | None:
        proc = self.procs[name]
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def stop_all(self) -> dict[str, int | None]:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        return {name: self.stop(name) for name in list(self.procs)}


def _consumes(name: str) -> bool:
    """Whether the service reads topics (the gateway's input is HTTP: it is never
    assigned partitions)."""
    return bool(load_spec(name).topics)


def service_env(
    bootstrap: str, database_url: str, extra: dict[str, str] | None = None
) -> dict[str, str]:
    env = {**os.environ, "NTX_KAFKA_BOOTSTRAP": bootstrap, "NTX_DATABASE_URL": database_url}
    env.update(extra or {})
    return env


def role_env(admin_url: str) -> dict[str, str]:
    """``NTX_<SERVICE>_DATABASE_URL`` for each service: its own role (least privilege),
    whose password ``ntx migrate`` set from the URL's password file or from
    ``NTX_SERVICE_DB_PASSWORD``. Empty when there is neither: the services then use
    the administrator's URL, as a database configured elsewhere may require."""
    if pgpass.passfile_of(admin_url) is None and secret("NTX_SERVICE_DB_PASSWORD") is None:
        return {}
    return {
        f"NTX_{name.upper()}_DATABASE_URL": db.role_url(admin_url, db.service_role(name))
        for name in SERVICES
    }


@contextmanager
def running_stack(data_dir: Path, extra_env: dict[str, str] | None = None):
    """Broker + database + topics + the three services; stops all on exit."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with EmbeddedStack(data_dir) as stack:
        print(f"ntx: broker {stack.describe_broker()}", flush=True)
        asyncio.run(create_topics(stack.bootstrap, **stack.topic_options()))
        broker_env = stack.settings_env()
        _migrate(stack.bootstrap, stack.database_url, broker_env)
        roles = role_env(stack.database_url)
        procs = ServiceProcesses(
            service_env(
                stack.bootstrap, stack.database_url, {**broker_env, **roles, **(extra_env or {})}
            ),
            data_dir,
        )
        procs.start_all()
        try:
            yield stack, procs
        finally:
            procs.stop_all()


def _migrate(bootstrap: str, database_url: str, extra: dict[str, str]) -> None:
    env = service_env(bootstrap, database_url, extra)
    subprocess.run(
        [sys.executable, "-m", "services.cli", "migrate"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def run(args) -> int:  # type: ignore[no-untyped-def]
    data_dir = Path(args.data_dir or os.environ.get("NTX_DATA_DIR", "var")).resolve()
    refused = check_configuration()
    if refused:
        print(f"ntx run: invalid configuration: {refused}", file=sys.stderr)
        return 2
    print(f"ntx: starting broker, database and services (data in {data_dir})", flush=True)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    data_dir.mkdir(parents=True, exist_ok=True)
    with running_stack(data_dir, dev_client_env(data_dir)) as (stack, procs):
        write_endpoints(data_dir, stack.bootstrap, stack.database_url, stack.settings_env())
        healthy = procs.wait_healthy()
        _print_ready(stack, procs, healthy, data_dir)
        # a service that dies is restarted; only Ctrl-C or SIGTERM ends the run
        with contextlib.suppress(KeyboardInterrupt):
            Supervisor(procs, say=lambda line: print(line, flush=True)).watch(lambda: stop["now"])
        print("ntx: stopping services...", flush=True)
        (data_dir / ENDPOINTS_FILE).unlink(missing_ok=True)
    print(f"ntx: stopped. Database files and service logs are in {data_dir}", flush=True)
    return 0


def check_configuration() -> str | None:
    """Each service's own configuration (the notifier's endpoints), checked before
    anything starts: the error naming the field, or None."""
    for name in SERVICES:
        spec = load_spec(name)
        if spec.check is not None:
            try:
                spec.check()
            except ValueError as exc:
                return f"{name}: {exc}"
    return None


def _roles(procs: ServiceProcesses) -> str:
    named = [f"NTX_{n.upper()}_DATABASE_URL" in procs.env for n in SERVICES]
    if all(named):
        return ", ".join(db.service_role(n) for n in SERVICES) + " (least privilege)"
    return "the administrator (no service passwords: see README, Least privilege)"


def _print_ready(stack, procs: ServiceProcesses, healthy: bool, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    state = "ready" if healthy else "NOT healthy (see logs)"
    print(f"ntx: services {state}", flush=True)
    print(f"  export NTX_KAFKA_BOOTSTRAP={stack.bootstrap}", flush=True)
    print(f"  export NTX_DATABASE_URL={stack.database_url}", flush=True)
    print(f"  services connect as {_roles(procs)}", flush=True)
    for name, port in procs.ports.items():
        print(
            f"  {name:<9} http://127.0.0.1:{port}/health  log {data_dir / (name + '.log')}",
            flush=True,
        )
    if "gateway" in procs.ports:
        token = data_dir / DEV_TOKEN_FILE
        dev = token.exists() and "dev" in procs.env.get("NTX_GATEWAY_CLIENTS", "")
        where = f"dev token in {token}" if dev else "clients as configured"
        base = f"http://127.0.0.1:{procs.ports['gateway']}"
        print(f"  FHIR R4   {base}/fhir  CDS Hooks {base}/cds-services  ({where})", flush=True)
    print("  Ctrl-C stops everything.", flush=True)
