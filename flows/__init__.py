"""Running loyalflow: Prefect flows, the embedded scheduler, the CLI, migrations and reports."""
