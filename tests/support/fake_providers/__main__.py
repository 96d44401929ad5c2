"""Run a fake provider on its own, e.g. for a benchmark in another process:

    python -m tests.support.fake_providers sendgrid --port 8025 --latency 0.02
"""

from __future__ import annotations

import argparse
import time

from tests.support.fake_providers.sendgrid import FakeSendGrid


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.support.fake_providers")
    parser.add_argument("provider", choices=["sendgrid"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds before each answer")
    parser.add_argument("--api-key", default="SG.bench")
    args = parser.parse_args()
    fake = FakeSendGrid(api_key=args.api_key, latency=args.latency)
    fake.port = args.port
    fake.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()


if __name__ == "__main__":
    main()
