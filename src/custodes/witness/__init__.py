"""A transparency log witness (c2sp.org/tlog-witness), run by someone other than the log.

A witness keeps its own cosigning key and, for each log it witnesses, the latest checkpoint it
cosigned. It cosigns a new checkpoint (c2sp.org/tlog-cosignature, cosignature/v1) only when a
consistency proof shows it extends that one, so a log that shows one history to some and
another to others, or rewrites its past, cannot get both cosigned by the same witness.

- :mod:`~custodes.witness.protocol`: the add-checkpoint request and 409 body formats
- :mod:`~custodes.witness.store`: the witness directory (key, logs, state, evidence)
- :mod:`~custodes.witness.cosigning`: the checks and the cosignature
- :mod:`~custodes.witness.server`: the HTTP endpoint ``custodes witness serve`` runs
"""
