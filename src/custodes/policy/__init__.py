"""The policy engine: a Cedar policy pack, and the questions custodes asks it.

* :func:`load_pack` reads and validates a pack directory (default: the one shipped in
  ``custodes/policy/pack``) into a :class:`PolicyPack` whose ``hash`` identifies it.
* :func:`evaluate` screens a demand: findings, each with rule id, outcome, reason, remedy.
* :func:`authorize_staff_access` and :func:`authorize` decide staff access to user data
  and every API or console operation.
* :func:`run_pack_tests` runs the pack's own test cases (``custodes policy check``).

See ``docs/policies.md`` for the rules and how a legal team changes them.
"""

from .access import Approval, Decision, authorize, authorize_staff_access
from .cases import CaseResult, run_pack_tests
from .pack import DEFAULT_PACK, PLACEHOLDERS, PolicyPack, Rule, load_pack, pack_hash
from .screening import DEMAND_CHECKS, evaluate
from .tables import Jurisdictions, Ladders, Limits, Offence, Role, Route, Routes, Tables

__all__ = [
    "DEFAULT_PACK",
    "DEMAND_CHECKS",
    "PLACEHOLDERS",
    "Approval",
    "CaseResult",
    "Decision",
    "Jurisdictions",
    "Ladders",
    "Limits",
    "Offence",
    "PolicyPack",
    "Role",
    "Route",
    "Routes",
    "Rule",
    "Tables",
    "authorize",
    "authorize_staff_access",
    "evaluate",
    "load_pack",
    "pack_hash",
    "run_pack_tests",
]
