"""Who may send FHIR to the gateway (DESIGN.md §8): clients with a bearer token,
stored as its SHA-256 (never the token), each scoped to the FHIR resource types it
may send (``"*"``: any).

* ``NTX_GATEWAY_CLIENTS``: a JSON list of ``{"name", "token_sha256", "scopes"}``;
* ``NTX_GATEWAY_CLIENTS_FILE``: a file holding the same list (a mounted secret).

The scope ``cds-services`` lets a client call the CDS Hooks service. Errors name
the field, never a value; a token is compared in constant time."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Iterable, Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

CLIENTS_ENV = "NTX_GATEWAY_CLIENTS"
CLIENTS_FILE_ENV = "NTX_GATEWAY_CLIENTS_FILE"
ANY = "*"
CDS_SCOPE = "cds-services"


class Client(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    token_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    scopes: tuple[str, ...] = Field(min_length=1)

    def allows(self, scope: str) -> bool:
        return ANY in self.scopes or scope in self.scopes


class Unauthenticated(Exception):
    """No token, or one no client holds (401)."""


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> tuple[str, str]:
    """A fresh token and the digest to configure (``ntx run`` makes its dev client so)."""
    token = secrets.token_urlsafe(32)
    return token, token_digest(token)


def authenticate(clients: Iterable[Client], authorization: str | None) -> Client:
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("a bearer token is required")
    digest = token_digest(token.strip())
    found = None
    for client in clients:  # every client compared: the time says nothing of which
        if hmac.compare_digest(client.token_sha256, digest):
            found = client
    if found is None:
        raise Unauthenticated("unknown token")
    return found


def load_clients(env: Mapping[str, str] | None = None) -> tuple[Client, ...]:
    """The configured clients (none: every call is refused with 401); ValueError
    naming the setting and field."""
    env = os.environ if env is None else env
    if env.get(CLIENTS_ENV):
        where, text = CLIENTS_ENV, env[CLIENTS_ENV]
    elif env.get(CLIENTS_FILE_ENV):
        where = CLIENTS_FILE_ENV
        try:
            text = Path(env[CLIENTS_FILE_ENV]).read_text()
        except OSError as exc:
            raise ValueError(f"{where}: cannot read the file ({exc.strerror})") from None
    else:
        return ()
    try:
        clients = TypeAdapter(tuple[Client, ...]).validate_python(json.loads(text))
    except json.JSONDecodeError:
        raise ValueError(f"{where}: not valid JSON") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ValueError(f"{where}: {field}: {err['msg']}") from None
    names = [c.name for c in clients]
    if len(set(names)) != len(names):
        raise ValueError(f"{where}: name: client names must be unique")
    return clients


#: ``ntx run``'s development client: its token in this file under the data directory
#: (mode 0600, kept across runs so a walk-through keeps working), never printed.
DEV_TOKEN_FILE = "gateway-token"


def dev_client_env(data_dir: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``NTX_GATEWAY_CLIENTS`` for ``ntx run`` when no client is configured: one
    client ``dev`` allowed every type and the CDS service, whose token is read from
    (or first written to) ``data_dir/gateway-token``. Empty when clients are set."""
    env = os.environ if env is None else env
    if env.get(CLIENTS_ENV) or env.get(CLIENTS_FILE_ENV):
        return {}
    path = data_dir / DEV_TOKEN_FILE
    if not path.exists():
        token, _ = new_token()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(token + "\n")
    digest = token_digest(path.read_text().strip())
    client = {"name": "dev", "token_sha256": digest, "scopes": [ANY]}
    return {CLIENTS_ENV: json.dumps([client])}
