"""Where NTX's services are wired: one registry of services (name -> the module whose
``SPEC`` describes it) and one function that builds a service from its name,
settings and clock. The worker, ``ntx run``, the cluster driver, ``ntx migrate``,
``ntx dlq`` and the command line all take the list and the specs from here.

Adding a service is one line in :data:`REGISTRY`. Importing this module is cheap (the
command line builds its parser from it): a service's module is imported only when
its spec is asked for.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.clock import Clock
    from shared.runtime import Runtime
    from shared.settings import Settings
    from shared.spec import ServiceSpec

#: Every service, in the order they are started and migrated.
REGISTRY: dict[str, str] = {
    "intake": "services.intake.service",
    "scheduler": "services.scheduler.service",
    "alerts": "services.alerts.service",
    "notifier": "services.notifier.service",
    "gateway": "services.gateway.service",
}
SERVICES: tuple[str, ...] = tuple(REGISTRY)


def load_spec(name: str) -> ServiceSpec:
    """The spec of the service ``name``; ValueError for a name not registered."""
    if name not in REGISTRY:
        raise ValueError(f"unknown service {name!r}")
    spec: ServiceSpec = importlib.import_module(REGISTRY[name]).SPEC
    return spec


def schema_for(name: str) -> str:
    """The service's database schema: its name, after ``NTX_SCHEMA_PREFIX`` if set
    (tests run several deployments in one database)."""
    return os.environ.get("NTX_SCHEMA_PREFIX", "") + name


def build(
    name: str,
    settings: Settings | None = None,
    clock: Clock | None = None,
    *,
    schema: str | None = None,
) -> Runtime:
    """The service ``name``, ready to start: by default with the settings and the
    clock of the environment (``NTX_*``, ``NTX_CLOCK_FILE``)."""
    from shared.clock import clock_from_env
    from shared.runtime import Runtime
    from shared.settings import get_settings

    return Runtime(
        load_spec(name),
        settings or get_settings(),
        clock or clock_from_env(),
        schema=schema or schema_for(name),
    )
