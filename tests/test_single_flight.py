"""A credential is verified by one thread at a time (single flight): threads presenting the
same name and password at once wait for that one result instead of each running scrypt
(32 MiB each) at the same moment."""

from __future__ import annotations

import threading
import time

from support import assert_problem

LINKS = "/api/v1.0/links"
THREADS = 8
HASH_SECONDS = 0.3  # long enough that every thread arrives while the first one hashes


class CountingHasher:
    """The app's own hasher, slowed down, counting its verifications."""

    def __init__(self, hasher) -> None:
        self.hasher = hasher
        self.calls = 0
        self.at_once = 0
        self.most_at_once = 0
        self._lock = threading.Lock()

    def verify(self, stored_hash, password):
        with self._lock:
            self.calls += 1
            self.at_once += 1
            self.most_at_once = max(self.most_at_once, self.at_once)
        try:
            time.sleep(HASH_SECONDS)
            return self.hasher.verify(stored_hash, password)
        finally:
            with self._lock:
                self.at_once -= 1

    def __getattr__(self, name):
        return getattr(self.hasher, name)


def at_once(app, requests_to_make) -> list:
    """Runs each callable on a thread of its own, all released together."""
    start = threading.Barrier(len(requests_to_make))
    results: list = [None] * len(requests_to_make)

    def run(index, make):
        client = app.test_client()
        start.wait()
        results[index] = make(client)

    threads = [
        threading.Thread(target=run, args=(index, make))
        for index, make in enumerate(requests_to_make)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def counting(app) -> CountingHasher:
    users = app.extensions["shortener"].users
    users.hasher = CountingHasher(users.hasher)
    users.credentials.clear()
    return users.hasher


def test_one_verification_for_eight_threads_with_the_same_credential(app, alice):
    hasher = counting(app)
    responses = at_once(app, [lambda client: client.get(LINKS, auth=alice)] * THREADS)
    assert [response.status_code for response in responses] == [200] * THREADS
    assert hasher.calls == 1
    # And the verified credential is remembered: the next request hashes nothing.
    assert app.test_client().get(LINKS, auth=alice).status_code == 200
    assert hasher.calls == 1


def test_a_wrong_password_is_verified_once_too(app, alice):
    hasher = counting(app)
    wrong = (alice[0], "not the password")
    responses = at_once(app, [lambda client: client.get(LINKS, auth=wrong)] * THREADS)
    for response in responses:
        assert_problem(response, 401)
    assert hasher.calls == 1
    # A failure is not remembered: the next attempt is verified again (then fails again).
    assert_problem(app.test_client().get(LINKS, auth=wrong), 401)
    assert hasher.calls == 2


def test_different_credentials_are_not_held_up_by_each_other(app, alice, bob):
    hasher = counting(app)
    responses = at_once(
        app,
        [lambda client: client.get(LINKS, auth=alice)] * 4
        + [lambda client: client.get(LINKS, auth=bob)] * 4,
    )
    assert [response.status_code for response in responses] == [200] * 8
    assert hasher.calls == 2
    assert hasher.most_at_once == 2  # alice's and bob's hashes ran side by side
