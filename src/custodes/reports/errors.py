"""What stops a transparency report from being made or from verifying.

The errors follow the shape of ``custodes.tlog.errors`` (stable ``code``, HTTP-like
``status``, one-line ``title``; ``detail`` and keyword ``evidence`` on the instance), so the CLI
prints them like every other custodes error, on one line::

    TlogError
    └── ReportError                the report could not be made                  (500)
        ├── PeriodError            not a period such as 2026H2, 2026Q3 or 2026   (400)
        ├── LeafError              an entry is not a well-formed event           (400)
        ├── ReportFormatError      a file of a report directory is malformed     (400)
        ├── UnverifiedLogError     the published log does not verify             (422)
        └── ReportMismatchError    recomputing the report gives something else   (409)
            └── LogChangedError    the log no longer holds the report's
                                   checkpoint as its first entries               (409)

A :class:`LeafError` never reaches the user: an entry that is not a well-formed event is
counted in the report (``entries_not_events``) and left out of every figure.

>>> err = ReportMismatchError("demands.csv line 3 differs", file="demands.csv", line=3)
>>> (err.code, err.status, err.evidence["line"], isinstance(err, ReportError))
('report_mismatch', 409, 3, True)
"""

from __future__ import annotations

from custodes.tlog import TlogError

__all__ = [
    "LeafError",
    "LogChangedError",
    "PeriodError",
    "ReportError",
    "ReportFormatError",
    "ReportMismatchError",
    "UnverifiedLogError",
]


class ReportError(TlogError):
    """Root of the reports' own errors."""

    code = "report_error"
    status = 500
    title = "The transparency report could not be made"


class PeriodError(ReportError):
    code = "report_period"
    status = 400
    title = "Not a reporting period"


class LeafError(ReportError):
    code = "report_leaf"
    status = 400
    title = "An entry is not a well-formed event"


class ReportFormatError(ReportError):
    code = "report_format"
    status = 400
    title = "A report file is malformed"


class UnverifiedLogError(ReportError):
    code = "report_unverified_log"
    status = 422
    title = "The published log does not verify"


class ReportMismatchError(ReportError):
    code = "report_mismatch"
    status = 409
    title = "The report differs from the one the log gives"


class LogChangedError(ReportMismatchError):
    code = "report_log_changed"
    title = "The log no longer holds the report's checkpoint"
