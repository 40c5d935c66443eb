"""Witnessing: the log asks its witnesses to cosign each new checkpoint before publishing it.

The sequencer calls a :class:`Witnessing` right after it signs a checkpoint and before it
stores or publishes anything (the ``cosign`` hook of
:class:`~custodes.ledger.sequencer.Sequencer`). For each configured witness, concurrently:

1. send ``POST <url>/add-checkpoint`` (c2sp.org/tlog-witness) with the size this witness
   cosigned last (0 when not known yet) and the consistency proof from that size;
2. on ``409 Conflict`` the witness answers with its size: retry once more from that size
   (a witness that has seen a larger tree, or another root at the same size, is a sign of a
   fork and is logged as an error, not retried);
3. on ``200`` keep the cosignature lines that verify under the witness's key.

If at least ``quorum`` witnesses cosigned, the note comes back with their cosignatures and
the sequencer stores and publishes it; otherwise :class:`WitnessQuorumError` is raised, the
sequencer stores and publishes nothing, and the next integration tries again. A witness that
failed is left alone for a while (doubling from 1 s to 60 s) so that a dead witness does not
slow every integration down; with ``quorum`` 0 the log never waits for witnesses.

The request body is formatted here and parsed by the witness
(:func:`custodes.witness.protocol.parse_add_checkpoint`); the ledger may not import the
witness package, and a test holds the two halves together.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx

from custodes.errors import ConfigError, LedgerError
from custodes.tlog import (
    Checkpoint,
    TlogError,
    Verifier,
    new_cosignature_verifier,
    open_note,
    parse_checkpoint,
)
from custodes.tlog.encoding import encode_base64, parse_decimal

__all__ = [
    "Prove",
    "WitnessEndpoint",
    "WitnessQuorumError",
    "Witnessing",
    "add_checkpoint_body",
]

log = logging.getLogger(__name__)

Prove = Callable[[int], list[bytes]]
"""The consistency proof from an older size to the checkpoint being witnessed."""

_RETRIES = 2
_MIN_BACKOFF = 1.0
_MAX_BACKOFF = 60.0
_MAX_RESPONSE = 64 * 1024


class WitnessQuorumError(LedgerError):
    code = "witness_quorum_unmet"
    status = 503
    title = "Too few witnesses cosigned the checkpoint"


@dataclass(frozen=True)
class WitnessEndpoint:
    """A witness the log submits to: its cosignature/v1 vkey and its submission prefix URL."""

    vkey: str
    url: str
    verifier: Verifier = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "verifier", new_cosignature_verifier(self.vkey))
        except TlogError as exc:
            raise ConfigError(f"witness key {self.vkey[:60]!r}: {exc.detail}") from None
        if not self.url.startswith(("http://", "https://")):
            raise ConfigError(f"witness URL {self.url!r} is not http(s)")

    @property
    def name(self) -> str:
        return self.verifier.name


def add_checkpoint_body(old_size: int, proof: Sequence[bytes], note: bytes) -> bytes:
    """An add-checkpoint request body (c2sp.org/tlog-witness)."""
    lines = [f"old {old_size}", *(encode_base64(h) for h in proof), ""]
    return "".join(line + "\n" for line in lines).encode() + note


def _checkpoint(note: bytes) -> Checkpoint:
    return parse_checkpoint(note[: note.rindex(b"\n\n") + 1].decode())


class _Refused(Exception):
    """One witness did not cosign; the reason is logged."""


class Witnessing:
    """Collects witness cosignatures for checkpoints (the sequencer's ``cosign`` hook)."""

    def __init__(
        self,
        witnesses: Sequence[WitnessEndpoint],
        quorum: int,
        *,
        timeout: float = 10.0,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not 0 <= quorum <= len(witnesses):
            raise ConfigError(f"witness quorum {quorum} is outside 0..{len(witnesses)}")
        self.witnesses = list(witnesses)
        self.quorum = quorum
        self._client = client or httpx.Client(timeout=timeout)
        self._clock = clock
        self._lock = threading.Lock()
        self._sizes: dict[str, int] = {}  # url -> size the witness cosigned last
        self._backoff: dict[str, tuple[float, float]] = {}  # url -> (retry at, delay)

    def close(self) -> None:
        self._client.close()

    def __call__(self, note: bytes, prove: Prove) -> bytes:
        """``note`` with the cosignatures of every witness that cosigned it."""
        cp = _checkpoint(note)
        with ThreadPoolExecutor(max_workers=max(1, len(self.witnesses))) as pool:
            results = list(pool.map(lambda w: self._cosign(w, note, cp, prove), self.witnesses))
        cosigned = [lines for lines in results if lines]
        if len(cosigned) < self.quorum:
            raise WitnessQuorumError(
                f"{len(cosigned)} of {len(self.witnesses)} witnesses cosigned checkpoint "
                f"{cp.size}; {self.quorum} needed",
                size=cp.size,
                cosigned=len(cosigned),
            )
        return note + b"".join(cosigned)

    def _cosign(self, w: WitnessEndpoint, note: bytes, cp: Checkpoint, prove: Prove) -> bytes:
        with self._lock:
            retry_at, delay = self._backoff.get(w.url, (0.0, 0.0))
            old = self._sizes.get(w.url, 0)
        if self._clock() < retry_at:
            return b""
        try:
            lines = self._submit(w, note, cp, prove, old)
        except (_Refused, httpx.HTTPError, TlogError) as exc:
            delay = min(_MAX_BACKOFF, max(_MIN_BACKOFF, delay * 2))
            with self._lock:
                self._backoff[w.url] = (self._clock() + delay, delay)
            log.warning("witness did not cosign witness=%s size=%d reason=%s", w.name, cp.size, exc)
            return b""
        with self._lock:
            self._sizes[w.url] = cp.size
            self._backoff.pop(w.url, None)
        return lines

    def _submit(
        self, w: WitnessEndpoint, note: bytes, cp: Checkpoint, prove: Prove, old: int
    ) -> bytes:
        for _ in range(_RETRIES):
            if old > cp.size:
                log.error("witness has seen a larger tree witness=%s size=%d", w.name, old)
                raise _Refused(f"it cosigned size {old}, larger than {cp.size}")
            proof = prove(old) if 0 < old < cp.size else []
            response = self._client.post(
                w.url.rstrip("/") + "/add-checkpoint",
                content=add_checkpoint_body(old, proof, note),
            )
            content = response.content[:_MAX_RESPONSE]
            if response.status_code == 200:
                return self._verified_lines(w, note, content)
            if response.status_code != 409:
                raise _Refused(f"HTTP {response.status_code}: {content[:200]!r}")
            size = parse_decimal(content.decode("ascii", "replace").rstrip("\n"), "witness size")
            if size == old:
                log.error("witness holds another root witness=%s size=%d", w.name, size)
                raise _Refused(f"it cosigned another tree at size {size}")
            old = size
        raise _Refused(f"its size kept changing (last {old})")

    @staticmethod
    def _verified_lines(w: WitnessEndpoint, note: bytes, content: bytes) -> bytes:
        if not content.endswith(b"\n") or not content.startswith("— ".encode()):
            raise _Refused("the response is not signature lines")
        opened = open_note(note + content, [w.verifier])
        return "".join(f"— {s.name} {s.base64}\n" for s in opened.sigs).encode()
