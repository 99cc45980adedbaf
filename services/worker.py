"""Run one service as a faust worker: ``ntx service intake|scheduler|alerts``."""

from __future__ import annotations

import importlib
import logging.config
import os

import faust

from shared.app import make_app
from shared.clock import clock_from_env
from shared.logs import logging_config
from shared.runtime import Runtime, ServiceSpec
from shared.settings import get_settings

SERVICES = ("intake", "scheduler", "alerts")


def load_spec(name: str) -> ServiceSpec:
    if name not in SERVICES:
        raise ValueError(f"unknown service {name!r}")
    return importlib.import_module(f"services.{name}.service").SPEC


def build_runtime(name: str) -> Runtime:
    settings = get_settings()
    schema = os.environ.get("NTX_SCHEMA_PREFIX", "") + name
    return Runtime(load_spec(name), settings, clock_from_env(), schema=schema)


def run_service(name: str) -> int:
    settings = get_settings()
    config = logging_config(name, settings.log_level)
    logging.config.dictConfig(config)
    runtime = build_runtime(name)
    app = make_app(runtime)
    worker = faust.Worker(
        app,
        loglevel=settings.log_level,
        logging_config=config,
        redirect_stdouts=False,
        quiet=True,
    )
    worker.execute_from_commandline()
    return 0
