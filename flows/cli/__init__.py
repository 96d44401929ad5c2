"""The `loyalflow` command. Each command group lives in its own module with `register(app)`."""

from __future__ import annotations

from flows.cli import (
    audience,
    bench_cmd,
    broadcast_cmds,
    channels_cmds,
    db,
    demo,
    demo_data,
    events_cmds,
    flows_cmds,
    journeys_cmds,
    templates_cmds,
)
from flows.cli.app import app, main

# command groups, in help order
for _module in (demo, db, audience, demo_data, templates_cmds, journeys_cmds, channels_cmds, events_cmds,
                flows_cmds, bench_cmd):
    _module.register(app)
broadcast_cmds.register(app)  # H7: `loyalflow broadcast ...`

__all__ = ["app", "main"]
