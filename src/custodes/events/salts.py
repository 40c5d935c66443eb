"""Salts for commitments, drawn without a system call each.

Every event commits to its private fields with a fresh random salt (see
:mod:`custodes.events.leaf`). ``os.urandom`` gives up the interpreter lock for its system
call, and under many threads each call then waits for the lock again: on the staff-access
read path, where every read logs two commitments, that wait cost more than the rest of the
check. Salts come instead from a pseudo-random function keyed with 64 bytes of
``os.urandom``: keyed BLAKE2b over a 128-bit counter, which is indistinguishable from
random to anyone without the key. The key is replaced after 2**20 salts, and in a child
process after ``fork`` (so that parent and child never draw the same salts).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading

from custodes.errors import InputError

__all__ = ["new_salt"]

_REKEY_AFTER = 1 << 20


class _SaltSource:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rekey()

    def _rekey(self) -> None:
        # One tuple, swapped whole: a thread never pairs a new key with an old counter.
        self._state = (os.urandom(64), itertools.count())

    def __call__(self, size: int) -> bytes:
        if not 1 <= size <= 64:
            raise InputError(f"a salt is 1..64 bytes, not {size}")
        key, counter = self._state
        n = next(counter)  # atomic under the interpreter lock
        if n >= _REKEY_AFTER:
            with self._lock:
                if self._state[0] is key:
                    self._rekey()
            key, counter = self._state
            n = next(counter)
        return hashlib.blake2b(n.to_bytes(16, "big"), key=key, digest_size=size).digest()


new_salt = _SaltSource()
"""``new_salt(n)``: ``n`` (1..64) unpredictable bytes."""

os.register_at_fork(after_in_child=new_salt._rekey)
