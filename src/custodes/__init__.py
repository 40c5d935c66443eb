"""custodes: every government demand for user data, and every privileged staff access to it,
handled through one intake and recorded in a verifiable transparency log."""

__version__ = "0.1.0"
