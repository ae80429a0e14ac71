"""Container health check: healthy when this container's Flower process accepts connections
(the SuperLink on its Fleet port, or the SuperNode on its ClientApp runtime port).

    python -m workloads.trainer.health
"""

from __future__ import annotations

import socket
import sys

from workloads import contract

PORTS = (contract.SUPERLINK_FLEET_PORT, contract.SUPERNODE_CLIENTAPPIO_PORT)


def listening(port: int, host: str = "127.0.0.1", timeout: float = 2.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def main() -> int:
    if any(listening(port) for port in PORTS):
        return 0
    print(f"nothing listening on {', '.join(map(str, PORTS))}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
