"""Salts for commitments: the right size, never repeated, distinct across threads and after
a fork, and bad sizes refused."""

from __future__ import annotations

import os
import threading

import pytest

from custodes.errors import InputError
from custodes.events.salts import new_salt


def test_salts_have_the_asked_size_and_do_not_repeat() -> None:
    salts = [new_salt(16) for _ in range(50_000)]
    assert {len(s) for s in salts} == {16}
    assert len(set(salts)) == len(salts)
    assert len(new_salt(32)) == 32 and len(new_salt(1)) == 1 and len(new_salt(64)) == 64


def test_salts_look_uniform() -> None:
    """Every byte value turns up about as often as chance says (a broken generator, such
    as a constant key with a reset counter or a truncated digest, fails this)."""
    data = b"".join(new_salt(64) for _ in range(4096))  # 262,144 bytes
    counts = [0] * 256
    for b in data:
        counts[b] += 1
    expected = len(data) / 256
    chi2 = sum((c - expected) ** 2 / expected for c in counts)
    assert chi2 < 400, chi2  # 255 degrees of freedom: p < 1e-8 above 400


@pytest.mark.parametrize("size", [0, 65, -1])
def test_bad_sizes_are_refused(size: int) -> None:
    with pytest.raises(InputError):
        new_salt(size)


def test_threads_draw_distinct_salts() -> None:
    out: list[list[bytes]] = [[] for _ in range(8)]

    def work(i: int) -> None:
        out[i].extend(new_salt(16) for _ in range(5_000))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [s for xs in out for s in xs]
    assert len(set(every)) == len(every) == 40_000


def test_a_forked_child_draws_other_salts_than_its_parent() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: send its next salts and leave at once
        os.close(read)
        os.write(write, b"".join(new_salt(16) for _ in range(8)))
        os._exit(0)
    os.close(write)
    mine = b"".join(new_salt(16) for _ in range(8))
    with os.fdopen(read, "rb") as f:
        theirs = f.read()
    os.waitpid(pid, 0)
    assert len(theirs) == 128
    assert {theirs[i : i + 16] for i in range(0, 128, 16)}.isdisjoint(
        {mine[i : i + 16] for i in range(0, 128, 16)}
    )
