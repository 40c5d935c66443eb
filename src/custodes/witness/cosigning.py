"""A witness: cosigns a log's checkpoint only if it extends the last one it cosigned.

:meth:`Witness.add_checkpoint` follows c2sp.org/tlog-witness, in the spec's order:

1. parse the request (400; 413 over the size limit);
2. the checkpoint's origin must be a log it witnesses (404), and a key it trusts for that
   origin must have signed it (403); signatures by other keys are ignored;
3. the old size must not exceed the checkpoint's size (400);
4. holding the log's lock: the old size must be the size of the latest checkpoint it
   cosigned, or 0 if none (409, answering with its size); at equal sizes the roots must be
   the same (409); otherwise the consistency proof from its latest checkpoint must verify
   (422, and the request is kept as evidence);
5. store the checkpoint as its latest for that log, then return its cosignature lines.

Once cosigned, a size is never accepted again with another root, and no smaller size is ever
accepted: the witness's view of each log only grows.
"""

from __future__ import annotations

import logging

from custodes.tlog import (
    EMPTY_ROOT,
    Checkpoint,
    FormatError,
    NoteSignatureError,
    ProofError,
    Signer,
    TlogError,
    Verifier,
    check_consistency,
    open_note,
    parse_checkpoint,
    sign_note,
)
from custodes.witness.errors import (
    ConflictingCheckpointError,
    InconsistentCheckpointError,
    MalformedRequestError,
    UnknownLogError,
    UntrustedCheckpointError,
)
from custodes.witness.protocol import AddCheckpoint, parse_add_checkpoint
from custodes.witness.store import WitnessStore

__all__ = ["Witness"]

log = logging.getLogger(__name__)


def _checkpoint_of(note: bytes) -> tuple[str, Checkpoint]:
    split = note.rfind(b"\n\n")
    if split < 0:
        raise MalformedRequestError("the checkpoint has no signatures")
    try:
        text = note[: split + 1].decode("utf-8")
        return text, parse_checkpoint(text)
    except (UnicodeDecodeError, TlogError) as exc:
        raise MalformedRequestError(f"not a checkpoint: {exc}") from None


class Witness:
    """Checks and cosigns checkpoints of the logs in ``store``, with ``cosigner``."""

    def __init__(self, store: WitnessStore, cosigner: Signer) -> None:
        self.store = store
        self.cosigner = cosigner
        self.logs: dict[str, Verifier] = store.logs()

    def add_checkpoint(self, body: bytes) -> bytes:
        """Handle one add-checkpoint request body; returns the cosignature lines."""
        request = parse_add_checkpoint(body)
        text, cp = _checkpoint_of(request.checkpoint)
        verifier = self.logs.get(cp.origin)
        if verifier is None:
            raise UnknownLogError(f"this witness does not witness {cp.origin!r}")
        try:
            open_note(request.checkpoint, [verifier])
        except FormatError as exc:
            raise MalformedRequestError(f"checkpoint note: {exc.detail}") from None
        except NoteSignatureError as exc:
            raise UntrustedCheckpointError(f"checkpoint of {cp.origin}: {exc.detail}") from None
        if request.old_size > cp.size:
            raise MalformedRequestError(f"old size {request.old_size} is over the size {cp.size}")
        with self.store.update(cp.origin) as save:
            self._check_against_latest(request, body, cp)
            save(request.checkpoint)
        log.info("cosigned origin=%s size=%d old=%d", cp.origin, cp.size, request.old_size)
        return sign_note(text, self.cosigner).split(b"\n\n")[-1]

    def _check_against_latest(self, request: AddCheckpoint, body: bytes, cp: Checkpoint) -> None:
        latest = self.store.latest(cp.origin)
        size, root = (0, EMPTY_ROOT) if latest is None else (latest[1].size, latest[1].root)
        if request.old_size != size:
            raise ConflictingCheckpointError(
                f"old size {request.old_size} is not the witness's size {size}", size=size
            )
        if size == cp.size and root != cp.root:
            self.store.keep_evidence(cp.origin, body, "same size, another root")
            raise ConflictingCheckpointError(
                f"the witness cosigned another root for size {size}", size=size
            )
        if size == 0:
            if cp.size == 0 and cp.root != EMPTY_ROOT:
                raise InconsistentCheckpointError('an empty tree has the root SHA-256("")')
            return  # the first checkpoint of a log is trusted on first use
        try:
            check_consistency(request.proof, size, cp.size, root, cp.root)
        except ProofError as exc:
            self.store.keep_evidence(cp.origin, body, exc.detail)
            raise InconsistentCheckpointError(
                f"checkpoint {cp.size} is not consistent with {size}: {exc.detail}"
            ) from None
