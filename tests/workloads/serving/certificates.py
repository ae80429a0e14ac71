"""A test certificate authority for the listeners' TLS tests: workloads/pki.py's issuer with the
tests' choices (P-256, a day's validity, loopback names), issuing as the stack's CA does (a
server certificate per listener, a client certificate per edge)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec

from workloads.pki import Authority, Issued, Leaf, Purpose

LOOPBACK = "127.0.0.1"
VALIDITY = dt.timedelta(days=1)


class TestCa:
    """A new CA under `directory` (`ca.crt`, `ca.key`), issuing leaf certificates there."""

    __test__ = False  # not a test class, whatever its name

    def __init__(self, directory: Path, name: str = "Meridian test CA"):
        self.directory = directory
        self._authority = Authority.create(Issued.named(directory, "ca"), name, ec.SECP256R1(), VALIDITY)
        self.cert = self._authority.files.cert

    def server(self, name: str) -> Issued:
        """A server certificate for the loopback address (serverAuth only)."""
        return self._issue(Leaf(name, Purpose.SERVER, ["localhost", LOOPBACK]))

    def client(self, name: str) -> Issued:
        """A client certificate whose common name is `name` (clientAuth only)."""
        return self._issue(Leaf(name, Purpose.CLIENT))

    def _issue(self, leaf: Leaf) -> Issued:
        return self._authority.issue(leaf, Issued.named(self.directory, leaf.common_name), VALIDITY)
