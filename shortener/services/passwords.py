"""Password hashing and a short-lived cache of verified credentials.

A current hash costs ~150 ms here; verifying it on every request would cap a client at
~15 requests/s. The cache keeps only an HMAC of name and password under a per-process random
key, and every hit is checked against the user's stored hash, so a changed password or a
deleted user stops working on the next request in every worker.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from werkzeug.security import check_password_hash, generate_password_hash

PASSWORD_MIN_LENGTH = 8
PASSWORD_MAX_LENGTH = 1024


class PasswordHasher:
    def __init__(self, method: str) -> None:
        self.method = method
        # Verifying against this for unknown users makes them cost what a wrong password costs.
        self._decoy_hash = generate_password_hash(secrets.token_urlsafe(16), method=method)

    def hash(self, password: str) -> str:
        return generate_password_hash(password, method=self.method)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        if stored_hash is None:
            check_password_hash(self._decoy_hash, password)
            return False
        return check_password_hash(stored_hash, password)


class CredentialCache:
    """Remembers (name, password) pairs that verified recently, by their keyed digest."""

    def __init__(self, ttl_seconds: float = 60.0, max_entries: int = 4096) -> None:
        self._key = secrets.token_bytes(32)
        self._ttl = ttl_seconds
        self._max_entries = max_entries
        self._entries: OrderedDict[bytes, tuple[str, float]] = OrderedDict()
        self._flights: dict[tuple[bytes, str | None], _Flight] = {}
        self._lock = threading.Lock()

    def verify_once(
        self, username: str, password: str, stored_hash: str | None, verify: Callable[[], bool]
    ) -> bool:
        """``verify()``, run by one thread at a time for a given credential (single flight):
        the others wait for its result instead of each hashing the same password at once
        (scrypt takes 32 MiB a time). Only credentials being verified right now are tracked,
        so the table never holds more entries than there are threads."""
        key = (self._digest(username, password), stored_hash)
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if leader:
                flight = self._flights[key] = _Flight()
        if not leader:
            flight.done.wait()
            if flight.verified is not None:
                return flight.verified
            return verify()  # the leader failed with an error: try for ourselves
        try:
            flight.verified = verify()
            if flight.verified and stored_hash is not None:
                self.remember(username, password, stored_hash)
            return flight.verified
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()

    def _digest(self, username: str, password: str) -> bytes:
        message = username.encode() + b"\x00" + password.encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def hit(self, username: str, password: str, stored_hash: str) -> bool:
        """True when this pair verified against ``stored_hash`` within the TTL."""
        digest = self._digest(username, password)
        with self._lock:
            entry = self._entries.get(digest)
        if entry is None:
            return False
        cached_hash, expires_at = entry
        if time.monotonic() >= expires_at or not hmac.compare_digest(cached_hash, stored_hash):
            self.forget(username, password)
            return False
        return True

    def remember(self, username: str, password: str, stored_hash: str) -> None:
        digest = self._digest(username, password)
        with self._lock:
            self._entries[digest] = (stored_hash, time.monotonic() + self._ttl)
            self._entries.move_to_end(digest)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def forget(self, username: str, password: str) -> None:
        with self._lock:
            self._entries.pop(self._digest(username, password), None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class _Flight:
    """One verification in progress, and its result for those who waited."""

    __slots__ = ("done", "verified")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.verified: bool | None = None
