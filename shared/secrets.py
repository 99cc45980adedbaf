"""Secrets (DESIGN.md §10): database and SASL passwords come from the environment or
from a file of the secrets directory (``/run/secrets``, where Docker and Kubernetes
mount them; ``NTX_SECRETS_DIR`` elsewhere), and are held as ``SecretStr`` so no
repr, log line or dump shows them.

A file is named as the variable would be (``/run/secrets/ntx_kafka_sasl_password``;
case does not matter), the pydantic-settings convention :class:`shared.settings.Settings`
follows for its own fields. The environment wins over a file.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import SecretStr

DEFAULT_DIR = "/run/secrets"


def secrets_dir() -> Path | None:
    """The secrets directory, if there is one (pydantic-settings warns about a
    missing one, so a machine without it names none)."""
    path = Path(os.environ.get("NTX_SECRETS_DIR", DEFAULT_DIR))
    return path if path.is_dir() else None


def secret(name: str) -> SecretStr | None:
    """The secret ``name`` (an environment variable's name): the variable if set,
    else its file in :func:`secrets_dir`, without the trailing newline editors add."""
    value = os.environ.get(name)
    if value:
        return SecretStr(value)
    where = secrets_dir()
    if where is None:
        return None
    for candidate in (where / name, where / name.lower()):
        if candidate.is_file():
            return SecretStr(candidate.read_text().rstrip("\r\n"))
    return None
