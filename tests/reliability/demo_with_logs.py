"""Run `loyalflow demo` with every logger of ours and of the provider SDKs at DEBUG into a file,
for the no-personal-data scan: python -m tests.reliability.demo_with_logs LOGFILE demo-args..."""

from __future__ import annotations

import logging
import sys

LOGGERS = ("loyalflow", "audiences", "templates", "channels", "journeys", "flows", "sendgrid",
           "python_http_client", "twilio", "httpx", "httpcore", "prefect", "apscheduler", "uvicorn")


def main() -> None:
    log_file, args = sys.argv[1], sys.argv[2:]
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.DEBUG)
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.DEBUG)
    for name in LOGGERS:  # on the named loggers too: Prefect's logging setup may replace the root's handlers
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    from flows.cli import main as cli

    sys.argv = ["loyalflow", *args]
    cli()


if __name__ == "__main__":
    main()
