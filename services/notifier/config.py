"""The notifier's endpoints, from a YAML (or JSON) file and the environment.

* ``NTX_NOTIFIER_CONFIG``: path of the file (format: ``endpoints.example.yaml`` beside
  this module, and docs/RECEIVING_NOTIFICATIONS.md);
* ``NTX_NOTIFIER_ENDPOINTS``: the endpoint list as JSON, replacing the file's.

A secret is given inline (development only), or as ``{file: PATH}`` (a mounted
secret such as ``/run/secrets/pager``; surrounding whitespace is dropped) or
``{env: NAME}`` (an environment variable). It is resolved here and held as a
``SecretStr``; errors name the field, never the value.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from services.notifier.domain.endpoints import Endpoint

CONFIG_ENV = "NTX_NOTIFIER_CONFIG"
ENDPOINTS_ENV = "NTX_NOTIFIER_ENDPOINTS"
SECRET_FIELDS = ("secret", "previous_secret")


class ConfigError(ValueError):
    """Bad notifier configuration; ``field`` names where (never the value)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


class NotifierConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    endpoints: tuple[Endpoint, ...] = ()

    @model_validator(mode="after")
    def _names_are_unique(self) -> NotifierConfig:
        seen: set[str] = set()
        for i, e in enumerate(self.endpoints):
            if e.name in seen:
                raise ValueError(f"endpoints.{i}.name: duplicate endpoint name {e.name!r}")
            seen.add(e.name)
        return self

    def endpoint(self, name: str) -> Endpoint | None:
        return next((e for e in self.endpoints if e.name == name), None)


def load_config(
    path: str | os.PathLike[str] | None = None, environ: Mapping[str, str] = os.environ
) -> NotifierConfig:
    """The configuration from ``path`` (default ``$NTX_NOTIFIER_CONFIG``) and ``environ``."""
    found = path or environ.get(CONFIG_ENV)
    raw = _read_file(Path(found)) if found else {}
    if ENDPOINTS_ENV in environ:
        raw["endpoints"] = _json_env(environ, ENDPOINTS_ENV)
    endpoints = raw.get("endpoints", [])
    if isinstance(endpoints, list):
        raw["endpoints"] = [_resolve(i, e, environ) for i, e in enumerate(endpoints)]
    try:
        return NotifierConfig.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"].removeprefix("Value error, ")
        if not loc and ": " in msg:  # a model-level check names its field in the message
            loc, msg = msg.split(": ", 1)
        raise ConfigError(loc or "config", msg) from None


def _read_file(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(CONFIG_ENV, f"cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        raise ConfigError(CONFIG_ENV, f"{path} is not valid YAML or JSON{where}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(CONFIG_ENV, f"{path} must hold a mapping with 'endpoints'")
    return loaded


def _json_env(environ: Mapping[str, str], name: str) -> Any:
    try:
        return json.loads(environ[name])
    except ValueError:
        raise ConfigError(name, "not valid JSON") from None


def _resolve(index: int, entry: Any, environ: Mapping[str, str]) -> Any:
    """``entry`` with its secret references replaced by the secrets themselves."""
    if not isinstance(entry, dict):
        return entry
    resolved = dict(entry)
    for field in SECRET_FIELDS:
        ref = entry.get(field)
        if isinstance(ref, dict):
            resolved[field] = _secret(f"endpoints.{index}.{field}", ref, environ)
    return resolved


def _secret(where: str, ref: dict[str, Any], environ: Mapping[str, str]) -> str:
    if set(ref) == {"file"}:
        try:
            return Path(str(ref["file"])).read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"{where}.file", f"cannot read {ref['file']}: {exc.strerror}"
            ) from None
    if set(ref) == {"env"}:
        value = environ.get(str(ref["env"]))
        if not value:
            raise ConfigError(f"{where}.env", f"environment variable {ref['env']} is not set")
        return value
    raise ConfigError(where, "give the secret inline, or as {file: PATH} or {env: NAME}")
