"""The outsider: checks a published log from its files alone.

Nothing here imports the store, the ledger or the service: an auditor has only what the platform
published (checkpoint, tiles, entry bundles), the keys in its own trust policy, and what it
verified before. docs/auditing.md explains its use.

- :mod:`~custodes.audit.auditor`: :func:`audit_log`, the whole audit, and its report
- :mod:`~custodes.audit.policy`: c2sp.org/tlog-policy files and checkpoint verification
- :mod:`~custodes.audit.state`: the last checkpoint accepted, and the leaf tiles behind it
- :mod:`~custodes.audit.logcheck`: rebuilding the tree from the entry bundles
- :mod:`~custodes.audit.source`: reading a directory or a URL
- :mod:`~custodes.audit.checks`: the :class:`Check` interface and the event replay, with the
  checks in :mod:`~custodes.audit.approvals`, :mod:`~custodes.audit.jurisdiction`,
  :mod:`~custodes.audit.refusals`, :mod:`~custodes.audit.deadlines` and, given published
  policy packs (:mod:`~custodes.audit.packs`), :mod:`~custodes.audit.screening`
- :mod:`~custodes.audit.findings`: every violation code; :mod:`~custodes.audit.errors`: what
  stops an audit from running
"""
