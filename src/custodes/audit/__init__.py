"""The outsider: checks a published log from its files alone.

Nothing here imports the store, the ledger or the service: an auditor has only what the platform
published (checkpoint, tiles, entry bundles) and the log's verifier key.
"""
