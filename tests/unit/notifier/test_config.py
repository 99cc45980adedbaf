"""Endpoint configuration from a file and the environment, secrets from files."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from services.notifier.config import ConfigError, load_config
from tests.unit.notifier.helpers import new_secret

EXAMPLE = Path(__file__).parents[3] / "services" / "notifier" / "endpoints.example.yaml"


def write(tmp_path: Path, text: str, name: str = "endpoints.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def one(secret_yaml: str) -> str:
    return f"""
endpoints:
  - name: pager
    audience: care_team
    url: https://pager.example.org/hook?token=URLTOKEN
    secret: {secret_yaml}
"""


def test_inline_file_and_env_secrets(tmp_path):
    inline, from_file, from_env = new_secret(), new_secret(), new_secret()
    secret_file = write(tmp_path, from_file + "\n", "pager_secret")
    text = f"""
endpoints:
  - {{name: a, audience: care_team, url: "https://a.example.org/", secret: "{inline}"}}
  - {{name: b, audience: patient, url: "https://b.example.org/", secret: {{file: "{secret_file}"}}}}
  - {{name: c, audience: external, url: "https://c.example.org/", secret: {{env: HOOK_C}},
      previous_secret: "{inline}", alerts: [overdose_risk]}}
"""
    config = load_config(write(tmp_path, text), environ={"HOOK_C": from_env})
    got = [e.secret.get_secret_value() for e in config.endpoints]
    assert got == [inline, from_file, from_env]
    assert config.endpoint("c").previous_secret.get_secret_value() == inline
    assert config.endpoint("c").alerts == frozenset({"overdose_risk"})


def test_the_path_comes_from_the_environment_and_json_works(tmp_path):
    secret = new_secret()
    doc = {
        "endpoints": [
            {
                "name": "a",
                "audience": "care_team",
                "url": "https://a.example.org/",
                "secret": secret,
            }
        ]
    }
    path = write(tmp_path, json.dumps(doc), "endpoints.json")
    config = load_config(environ={"NTX_NOTIFIER_CONFIG": str(path)})
    assert [e.name for e in config.endpoints] == ["a"]


def test_the_environment_replaces_the_files_endpoints(tmp_path):
    path = write(tmp_path, one(f'"{new_secret()}"'))
    replacement = [
        {
            "name": "z",
            "audience": "patient",
            "url": "https://z.example.org/",
            "secret": {"env": "Z"},
        }
    ]
    environ = {"NTX_NOTIFIER_ENDPOINTS": json.dumps(replacement), "Z": new_secret()}
    assert [e.name for e in load_config(path, environ).endpoints] == ["z"]


def test_no_configuration_means_no_endpoints():
    assert load_config(environ={}).endpoints == ()


def test_the_example_file_is_valid(tmp_path):
    text = EXAMPLE.read_text().replace("/run/secrets/", f"{tmp_path}/")
    for name in ("ntx_webhook_pager", "ntx_webhook_sms"):
        (tmp_path / name).write_text(new_secret())
    config = load_config(write(tmp_path, text), environ={"NTX_WEBHOOK_SECRET_BOARD": new_secret()})
    assert [e.name for e in config.endpoints] == [
        "care-team-pager",
        "care-team-board",
        "patient-sms",
    ]


@pytest.mark.parametrize(
    "text, environ, field",
    [
        (one("{file: /nonexistent/secret}"), {}, "endpoints.0.secret.file"),
        (one("{env: NOT_SET}"), {}, "endpoints.0.secret.env"),
        (one("{vault: x}"), {}, "endpoints.0.secret"),
        (one('"whsec_c2hvcnQ="'), {}, "endpoints.0.secret"),
        (one('"x"').replace("care_team", "family"), {}, "endpoints.0.audience"),
        (one('"x"') + "    colour: red\n", {}, "endpoints.0"),
        ("endpoints: [\n", {}, "NTX_NOTIFIER_CONFIG"),
        ("- just a list\n", {}, "NTX_NOTIFIER_CONFIG"),
        ("endpoints: []\nretries: 3\n", {}, "retries"),
        ("", {"NTX_NOTIFIER_ENDPOINTS": "[{"}, "NTX_NOTIFIER_ENDPOINTS"),
    ],
)
def test_bad_configuration_names_the_field(tmp_path, text, environ, field):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text), environ)
    assert err.value.field.startswith(field), err.value


def test_duplicate_names_are_refused(tmp_path):
    entry = f'  - {{name: a, audience: care_team, url: "https://a.example.org/", secret: "{new_secret()}"}}\n'
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, "endpoints:\n" + entry + entry), {})
    assert err.value.field == "endpoints.1.name"


def test_a_missing_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / "absent.yaml", {})
    assert err.value.field == "NTX_NOTIFIER_CONFIG"


def test_secrets_and_urls_are_never_printed_or_logged(tmp_path, caplog, capsys):
    """Load, print and log the configuration, and fail on a bad secret: the secret,
    the previous secret and the URL's token appear nowhere."""
    secret, previous = new_secret(), new_secret()
    path = write(tmp_path, one(f'"{secret}"') + f'    previous_secret: "{previous}"\n')
    caplog.set_level(logging.DEBUG)
    config = load_config(path, {})
    print(config, repr(config), config.endpoints, config.model_dump())
    logging.getLogger("ntx.test").info("config %s %r", config, config.endpoints[0])
    short = new_secret(8)
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, one(f'"{short}"'), "bad.yaml"), {})
    shown = capsys.readouterr().out + caplog.text + str(err.value)
    for hidden in (secret, previous, short, "URLTOKEN"):
        assert hidden not in shown
    assert config.endpoints[0].secret.get_secret_value() == secret  # it is there, only hidden
