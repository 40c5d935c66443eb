"""What a witness refuses, as c2sp.org/tlog-witness status codes.

Each error is a :class:`~custodes.errors.CustodesError` under the class whose HTTP status the
spec asks for, so the problem+json handler renders it; a 409 is answered with the witness's
size in ``text/x.tlog.size`` instead, as the spec requires::

    MalformedRequestError         (InputError)       400  the body is not a request
    RequestTooLargeError          (TooLargeError)    413  the body is over the size limit
    UntrustedCheckpointError      (ForbiddenError)   403  no signature by a key it trusts
    UnknownLogError               (NotFoundError)    404  it witnesses no log of that origin
    ConflictingCheckpointError    (ConflictError)    409  old size is not its size, or same
                                                          size with another root
    InconsistentCheckpointError   (CustodesError)    422  the consistency proof fails

>>> err = ConflictingCheckpointError("old size 5 is not 7", size=7)
>>> (err.status, err.code, err.size)
(409, 'witness_conflict', 7)
"""

from __future__ import annotations

from typing import Any

from custodes.errors import (
    ConflictError,
    CustodesError,
    ForbiddenError,
    InputError,
    NotFoundError,
    TooLargeError,
)

__all__ = [
    "ConflictingCheckpointError",
    "InconsistentCheckpointError",
    "MalformedRequestError",
    "RequestTooLargeError",
    "UnknownLogError",
    "UntrustedCheckpointError",
]


class MalformedRequestError(InputError):
    code = "witness_bad_request"
    title = "Not an add-checkpoint request"


class RequestTooLargeError(TooLargeError):
    code = "witness_too_large"
    title = "Add-checkpoint request too large"


class UntrustedCheckpointError(ForbiddenError):
    code = "witness_untrusted"
    title = "Checkpoint not signed by a key the witness trusts"


class UnknownLogError(NotFoundError):
    code = "witness_unknown_log"
    title = "The witness does not witness this log"


class ConflictingCheckpointError(ConflictError):
    code = "witness_conflict"
    title = "Old size or root does not match the witness's checkpoint"

    def __init__(self, detail: str, *, size: int, **evidence: Any) -> None:
        super().__init__(detail, size=size, **evidence)
        self.size = size


class InconsistentCheckpointError(CustodesError):
    code = "witness_inconsistent"
    status = 422
    title = "Consistency proof does not verify"
