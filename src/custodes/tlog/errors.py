"""The error tree of the ``custodes.tlog`` library.

Every error the library raises on purpose is a :class:`TlogError`. The shape matches
``custodes.errors.CustodesError`` (a stable ``code``, an HTTP ``status``, a one-line ``title``
on the class; ``detail`` and keyword ``evidence`` on the instance), so one handler renders
both as RFC 9457 problem+json. Malformed input never escapes as a bare ``ValueError``,
``IndexError`` or ``binascii.Error``.

::

    TlogError                     anything the library refuses                     (500)
    ├── FormatError               malformed bytes or text                          (400)
    │   ├── SizeLimitError        over a size limit, refused before parsing        (413)
    │   └── KeyFormatError        a malformed signer or verifier key               (400)
    ├── RangeError                an index or size outside the tree                (400)
    ├── ProofError                an inclusion or consistency proof does not verify (422)
    │   └── InconsistentTreeError two tree heads that no append-only log can
    │                             produce; holds both roots and the proof          (422)
    └── NoteSignatureError        no valid signature from a known key              (422)
        ├── BadSignatureError     a known key's signature fails to verify          (422)
        ├── WrongOriginError      a checkpoint from another log                    (422)
        └── AmbiguousKeyError     two known keys share a name and key ID           (422)

>>> err = InconsistentTreeError("roots differ", old_size=1, new_size=1)
>>> (err.code, err.status, err.evidence["old_size"], isinstance(err, ProofError))
('tlog_inconsistent_tree', 422, 1, True)
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AmbiguousKeyError",
    "BadSignatureError",
    "FormatError",
    "InconsistentTreeError",
    "KeyFormatError",
    "NoteSignatureError",
    "ProofError",
    "RangeError",
    "SizeLimitError",
    "TlogError",
    "WrongOriginError",
]


class TlogError(Exception):
    """Root of the tlog error tree."""

    code: ClassVar[str] = "tlog_error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Transparency log error"

    def __init__(self, detail: str, **evidence: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.evidence: dict[str, Any] = evidence

    def __str__(self) -> str:
        return self.detail


class FormatError(TlogError):
    code = "tlog_malformed"
    status = 400
    title = "Malformed transparency log data"


class SizeLimitError(FormatError):
    code = "tlog_too_large"
    status = 413
    title = "Transparency log data over a size limit"


class KeyFormatError(FormatError):
    code = "tlog_malformed_key"
    title = "Malformed signer or verifier key"


class RangeError(TlogError):
    code = "tlog_out_of_range"
    status = 400
    title = "Index or size outside the tree"


class ProofError(TlogError):
    code = "tlog_bad_proof"
    status = 422
    title = "Merkle proof does not verify"


class InconsistentTreeError(ProofError):
    code = "tlog_inconsistent_tree"
    title = "Two tree heads are not consistent"


class NoteSignatureError(TlogError):
    code = "tlog_unverified_note"
    status = 422
    title = "Note has no valid signature from a known key"


class BadSignatureError(NoteSignatureError):
    code = "tlog_bad_note_signature"
    title = "A known key's note signature does not verify"


class WrongOriginError(NoteSignatureError):
    code = "tlog_wrong_origin"
    title = "Checkpoint comes from another log"


class AmbiguousKeyError(NoteSignatureError):
    code = "tlog_ambiguous_key"
    title = "Two known keys share a name and key ID"
