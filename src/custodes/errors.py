"""The custodes error tree.

Every error custodes raises on purpose is a :class:`CustodesError` (or, inside the standalone
``custodes.tlog`` library, a :class:`custodes.tlog.errors.TlogError`, which follows the same
shape so that the same handler renders both). Each class carries a stable ``code`` (listed in
``docs/api.md``), an HTTP ``status`` and a one-line ``title``; the instance carries the
``detail`` and any evidence. The web layer renders them as RFC 9457 problem+json; the CLI prints
``error[code]: detail`` on one line and exits non-zero.

::

    CustodesError
    ├── ConfigError                 bad settings or data directory          (500)
    ├── StorageError                database unreachable or inconsistent     (503)
    │   └── MigrationError          schema older or newer than the code      (500)
    ├── LedgerError                 the log refuses                          (500)
    │   ├── EntryTooLargeError      an entry over the size limit             (413)
    │   ├── ForkError               a new tree inconsistent with the last
    │   │                           checkpoint; holds both and the proof     (500)
    │   └── TileConflictError       a published tile would change            (500)
    ├── InputError                  malformed input from outside             (400)
    │   ├── TooLargeError           over a size limit                        (413)
    │   └── NotFoundError           no such thing                            (404)
    ├── AuthError                   who is asking could not be established   (401)
    │   └── SignatureError          an RFC 9421 signature failed             (401)
    ├── ForbiddenError              policy says no                           (403)
    ├── ConflictError               the state does not allow it              (409)
    │   └── TransitionError         an illegal lifecycle transition          (409)
    └── RateLimitError              too many requests                        (429)
"""

from __future__ import annotations

from typing import Any, ClassVar


class CustodesError(Exception):
    """Root of the custodes error tree."""

    code: ClassVar[str] = "custodes_error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, **evidence: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.evidence: dict[str, Any] = evidence

    def __str__(self) -> str:
        return self.detail


class ConfigError(CustodesError):
    code = "config"
    title = "Configuration error"


class StorageError(CustodesError):
    code = "storage"
    status = 503
    title = "Storage unavailable"


class MigrationError(StorageError):
    code = "migration"
    status = 500
    title = "Database schema does not match this version"


class LedgerError(CustodesError):
    code = "ledger"
    title = "The log refused the operation"


class EntryTooLargeError(LedgerError):
    code = "entry_too_large"
    status = 413
    title = "Log entry too large"


class ForkError(LedgerError):
    code = "fork"
    title = "New tree is inconsistent with the last checkpoint"


class TileConflictError(LedgerError):
    code = "tile_conflict"
    title = "A published tile would change"


class InputError(CustodesError):
    code = "bad_input"
    status = 400
    title = "Malformed input"


class TooLargeError(InputError):
    code = "too_large"
    status = 413
    title = "Input too large"


class NotFoundError(InputError):
    code = "not_found"
    status = 404
    title = "Not found"


class AuthError(CustodesError):
    code = "unauthenticated"
    status = 401
    title = "Authentication required"


class SignatureError(AuthError):
    code = "bad_signature"
    title = "HTTP message signature rejected"


class ForbiddenError(CustodesError):
    code = "forbidden"
    status = 403
    title = "Not permitted"


class ConflictError(CustodesError):
    code = "conflict"
    status = 409
    title = "Conflicts with the current state"


class TransitionError(ConflictError):
    code = "illegal_transition"
    title = "Illegal lifecycle transition"


class RateLimitError(CustodesError):
    code = "rate_limited"
    status = 429
    title = "Too many requests"
