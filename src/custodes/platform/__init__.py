"""The platform: the adapter custodes uses to learn about subjects and act on them.

* :class:`PlatformAdapter` — the protocol (subject, evidence, read, restrict, hold, notify).
* :func:`build_reference_platform` and :class:`ReferencePlatform` — a built-in platform
  over a generated SQLite data set, deterministic from a seed, for the demo and the tests.
* :data:`FIXTURES` — its well-known subjects.
"""

from .adapter import (
    AppliedRestriction,
    HeldEvidence,
    Hold,
    Notice,
    PlatformAdapter,
    Records,
    Row,
)
from .dataset import EPOCH, DatasetSummary, build_reference_platform
from .fixtures import FIXTURES, Fixtures
from .reference import ReferencePlatform

__all__ = [
    "EPOCH",
    "FIXTURES",
    "AppliedRestriction",
    "DatasetSummary",
    "Fixtures",
    "HeldEvidence",
    "Hold",
    "Notice",
    "PlatformAdapter",
    "Records",
    "ReferencePlatform",
    "Row",
    "build_reference_platform",
]
