"""Errors that stop an audit before it can say anything about the log.

A violation found *in* the log is not an error: it is a
:class:`~custodes.audit.findings.Finding` in the report, and the audit goes on. The errors here
mean the audit could not be run as asked (a malformed policy, an unreadable state file, a
source that cannot be reached), so there is nothing to report yet. They follow the shape of
``custodes.tlog.errors`` (stable ``code``, HTTP-like ``status``, ``title``; ``detail`` and
keyword ``evidence``), so the CLI prints them like every other custodes error::

    TlogError
    └── AuditError               the audit could not be run               (500)
        ├── PolicyError          the tlog-policy file is malformed        (400)
        ├── StateError           the state file is unreadable or belongs
        │                        to another log                           (409)
        ├── OpeningsError        the disclosed openings file is malformed (400)
        ├── PackError            a published policy pack cannot be read   (400)
        ├── FetchError           the source could not be read             (502)
        └── EvidenceError        evidence of the findings cannot be
                                 written (a directory in use, a log that
                                 changed since it was audited)            (409)

>>> err = PolicyError("line 3: unknown keyword 'wtness'", line=3)
>>> (err.code, err.status, err.evidence["line"], isinstance(err, AuditError))
('audit_policy', 400, 3, True)
"""

from __future__ import annotations

from custodes.tlog import TlogError

__all__ = [
    "AuditError",
    "EvidenceError",
    "FetchError",
    "OpeningsError",
    "PackError",
    "PolicyError",
    "StateError",
]


class AuditError(TlogError):
    """Root of the audit's own errors."""

    code = "audit_error"
    status = 500
    title = "The audit could not be run"


class PolicyError(AuditError):
    code = "audit_policy"
    status = 400
    title = "Malformed tlog-policy file"


class StateError(AuditError):
    code = "audit_state"
    status = 409
    title = "The audit state file cannot be used"


class OpeningsError(AuditError):
    code = "audit_openings"
    status = 400
    title = "Malformed openings file"


class PackError(AuditError):
    code = "audit_pack"
    status = 400
    title = "A published policy pack cannot be read"


class FetchError(AuditError):
    code = "audit_fetch"
    status = 502
    title = "The published log could not be read"


class EvidenceError(AuditError):
    code = "audit_evidence"
    status = 409
    title = "Evidence of the findings cannot be written"
