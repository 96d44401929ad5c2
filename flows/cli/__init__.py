"""The `loyalflow` command. Each command group lives in its own module with `register(app)`."""

from __future__ import annotations

import importlib

from flows.cli.app import app, main

# Command modules, in help order. A module that is not written yet is skipped.
COMMAND_MODULES = (
    "flows.cli.demo",
    "flows.cli.db",
    "flows.cli.audience",
    "flows.cli.demo_data",
    "flows.cli.templates_cmds",
    "flows.cli.journeys_cmds",
    "flows.cli.channels_cmds",
    "flows.cli.events_cmds",
    "flows.cli.flows_cmds",
    "flows.cli.bench_cmd",
)

for _name in COMMAND_MODULES:
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as _exc:
        if _exc.name != _name:
            raise
        continue
    _module.register(app)

__all__ = ["app", "main"]
