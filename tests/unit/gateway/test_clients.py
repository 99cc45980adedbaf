"""Gateway clients: configuration (errors name the setting and field, never a
value), bearer authentication against the stored SHA-256, scopes."""

from __future__ import annotations

import json

import pytest

from services.gateway.clients import (
    CLIENTS_ENV,
    CLIENTS_FILE_ENV,
    DEV_TOKEN_FILE,
    Unauthenticated,
    authenticate,
    dev_client_env,
    load_clients,
    new_token,
    token_digest,
)


def config(*scopes: str, name: str = "ehr") -> tuple[str, list[dict]]:
    token, digest = new_token()
    return token, [{"name": name, "token_sha256": digest, "scopes": list(scopes)}]


def test_no_setting_means_no_clients():
    assert load_clients({}) == ()


def test_clients_come_from_the_environment_or_a_file(tmp_path):
    token, listed = config("Observation")
    [client] = load_clients({CLIENTS_ENV: json.dumps(listed)})
    assert client.name == "ehr" and client.allows("Observation")
    assert not client.allows("MedicationAdministration")
    path = tmp_path / "clients.json"
    path.write_text(json.dumps(listed))
    assert load_clients({CLIENTS_FILE_ENV: str(path)}) == (client,)
    assert authenticate([client], f"Bearer {token}") == client


def test_the_star_scope_allows_every_type():
    _, listed = config("*")
    [client] = load_clients({CLIENTS_ENV: json.dumps(listed)})
    assert client.allows("Bundle") and client.allows("cds-services")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"token_sha256": "secret-token"}, "0.token_sha256"),
        ({"scopes": []}, "0.scopes"),
        ({"name": "has space"}, "0.name"),
        ({"token": "x"}, "0.token"),
    ],
)
def test_a_bad_client_is_refused_naming_the_field_not_the_value(change, field):
    _, listed = config("Observation")
    listed[0].update(change)
    with pytest.raises(ValueError, match=f"{CLIENTS_ENV}: {field}") as refused:
        load_clients({CLIENTS_ENV: json.dumps(listed)})
    assert "secret-token" not in str(refused.value)


def test_duplicate_names_and_bad_json_are_refused():
    _, one = config("Observation")
    _, two = config("Procedure")
    with pytest.raises(ValueError, match="name: client names must be unique"):
        load_clients({CLIENTS_ENV: json.dumps(one + two)})
    with pytest.raises(ValueError, match="not valid JSON"):
        load_clients({CLIENTS_ENV: "[{"})
    with pytest.raises(ValueError, match=f"{CLIENTS_FILE_ENV}: cannot read"):
        load_clients({CLIENTS_FILE_ENV: "/nonexistent/clients.json"})


@pytest.mark.parametrize("header", [None, "", "Bearer ", "Basic abc", "Bearer wrong"])
def test_a_missing_or_unknown_token_is_unauthenticated(header):
    _, listed = config("*")
    clients = load_clients({CLIENTS_ENV: json.dumps(listed)})
    with pytest.raises(Unauthenticated):
        authenticate(clients, header)


def test_the_digest_is_the_hex_sha256_of_the_token():
    token, digest = new_token()
    assert digest == token_digest(token) and len(digest) == 64 and token not in digest


def test_ntx_run_makes_one_dev_client_whose_token_stays_in_a_private_file(tmp_path):
    env = dev_client_env(tmp_path, {})
    path = tmp_path / DEV_TOKEN_FILE
    token = path.read_text().strip()
    assert path.stat().st_mode & 0o777 == 0o600
    [client] = load_clients(env)
    assert client.name == "dev" and client.allows("Observation")
    assert token not in env[CLIENTS_ENV] and authenticate([client], f"Bearer {token}") == client
    assert dev_client_env(tmp_path, {}) == env  # the same token next run
    assert dev_client_env(tmp_path, {CLIENTS_ENV: "[]"}) == {}
