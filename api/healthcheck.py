"""The container's health check: `python -m api.healthcheck`; exit 0 when healthy.

Standard library only, so each check starts in milliseconds rather than loading the service. One
check serves every role of the image: healthy when the API (`ATTUNE_PORT`) or the worker's own
server (`ATTUNE_WORKER_PORT`) answers `/healthz` with 200 on this host.
"""

import os
import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 3.0


def healthy(port: str) -> bool:
    url = f"http://127.0.0.1:{int(port)}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as answer:
            return int(answer.status) == 200
    except (OSError, ValueError, urllib.error.URLError):
        return False


def main() -> int:
    ports = (os.environ.get("ATTUNE_PORT", "8000"), os.environ.get("ATTUNE_WORKER_PORT", "8001"))
    return 0 if any(port != "0" and healthy(port) for port in ports) else 1


if __name__ == "__main__":
    sys.exit(main())
