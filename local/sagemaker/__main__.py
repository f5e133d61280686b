"""`python -m local.sagemaker --port N --aws-endpoint-url URL`: run the emulator standalone."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from local.sagemaker.server import EmulatorServer


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m local.sagemaker", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5056)
    parser.add_argument("--aws-endpoint-url", required=True, help="moto server URL (S3, CloudWatch)")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--provisioning-delay", type=float, default=0.5, help="seconds to 'launch' a fleet")
    parser.add_argument("--alarm-poll-interval", type=float, default=0.5)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    server = EmulatorServer(args.host, args.port, args.aws_endpoint_url, args.region,
                            args.provisioning_delay, args.alarm_poll_interval).start()
    print(f"SageMaker emulator listening on {server.url}", flush=True)
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    done.wait()
    server.stop()


if __name__ == "__main__":
    main()
