"""Authorizing people: staff access to user data, and every API or console operation.

Both ask the pack's Cedar policies (``staff.cedar``, ``api.cedar``) and answer with a
:class:`Decision`: whether it is allowed, and the findings that say why. A Cedar error is a
refusal (``pack.error``); nothing is allowed that no policy permits (``<action>.default_deny``).

>>> from custodes.model import Staff
>>> from custodes.policy import load_pack
>>> pack = load_pack()
>>> liaison = Staff("s-9", frozenset({"data_custodian"}), "CN")
>>> d = authorize_staff_access(pack, liaison, "US", justification="demand",
...                            demand_approved=True, requesting="CN")
>>> d.allowed, [f.rule_id for f in d.findings if f.blocks]
(False, ['staff.local_access_only', 'staff.requesting_state'])
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import cedarpy

from custodes.errors import ForbiddenError
from custodes.model import Authority, Finding, Outcome, Staff

from .pack import PolicyPack

__all__ = ["Approval", "Decision", "authorize", "authorize_staff_access"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    """Allowed or not, and the findings that say why."""

    allowed: bool
    findings: tuple[Finding, ...]

    def check(self) -> None:
        """Return if allowed; else raise ``ForbiddenError`` naming the rules that refused."""
        if not self.allowed:
            refused = [f for f in self.findings if f.blocks]
            detail = "; ".join(f.reason for f in refused) or "not permitted"
            raise ForbiddenError(detail, rules=[f.rule_id for f in refused])


@dataclass(frozen=True)
class Approval:
    """What ``demand.approve`` needs to know: who asks, whom it reaches, who did what."""

    requesting: str
    affected: frozenset[str]
    intake_by: str
    approved_by: frozenset[str] = frozenset()


def _staff_entity(pack: PolicyPack, staff: Staff, uid: dict[str, str]) -> list[str]:
    entity = {
        "uid": uid,
        "attrs": {"location": {"__entity": {"type": "Jurisdiction", "id": staff.location}}},
        "parents": [{"type": "Role", "id": r} for r in sorted(staff.roles)],
    }
    return [json.dumps(entity), *pack.entities.pick([staff.location])]


def _authority_entity(pack: PolicyPack, a: Authority, uid: dict[str, str]) -> list[str]:
    entity = {
        "uid": uid,
        "attrs": {
            "kind": a.kind.value,
            "standing": a.standing.value,
            "jurisdiction": {"__entity": {"type": "Jurisdiction", "id": a.jurisdiction}},
            "country": {"__entity": {"type": "Jurisdiction", "id": a.country}},
            "recognised": a.jurisdiction in pack.tables.jurisdictions,
        },
        "parents": [],
    }
    return [json.dumps(entity), *pack.entities.pick([a.jurisdiction, a.country])]


def _ask(
    pack: PolicyPack,
    action: str,
    request: tuple[dict[str, str], dict[str, str], dict[str, Any]],
    entities: Iterable[str],
) -> Decision:
    """Ask Cedar whether ``(principal, resource, context)`` may do ``action``."""
    principal, resource, context = request
    store = pack.entities.store(entities)
    cedar_request = {
        "principal": principal,
        "action": {"type": "Action", "id": action},
        "resource": resource,
        "context": context,
    }
    policies = pack.policies_for(action)
    result = cedarpy.is_authorized_batch([cedar_request], policies, store, pack.schema)[0]
    errors = result.diagnostics.errors
    if errors or result.decision is cedarpy.Decision.NoDecision:
        log.error("authorization could not be decided", extra={"action": action, "errors": errors})
        reason = f"the policy pack could not decide {action}"
        fix = "check the operation name and its context; custodes policy check shows pack errors"
        return Decision(False, (Finding("pack.error", Outcome.REFUSE, reason, fix),))
    ids = sorted(set(result.diagnostics.id_annotations_by_reason.values()))
    if not ids:
        reason = f"no rule of the policy pack allows {action} for this person"
        fix = "someone holding a role that may do this does it"
        return Decision(False, (Finding(f"{action}.default_deny", Outcome.REFUSE, reason, fix),))
    findings = []
    for i in ids:
        rule = pack.rules[i]
        findings.append(Finding(rule.id, rule.outcome, rule.reason, rule.remedy, role=rule.role))
    return Decision(result.allowed, tuple(findings))


_MAX_DECISIONS = 4096
"""Authority decisions a pack remembers (one per authority and operation in practice)."""


def _authority_decision(pack: PolicyPack, authority: Authority, action: str) -> Decision:
    """May ``authority`` perform ``action``: asked once per pack, authority and operation.

    The question holds nothing but the authority's id, kind, standing and jurisdiction (an
    authority's operation has no context; :func:`authorize` asks one with a context afresh),
    and the same pack answers the same question the same way, so the answer is remembered by
    those; every signed request asks it. A changed standing is another question. An answer
    Cedar could not decide is not remembered."""
    key = (action, authority.id, authority.kind, authority.standing, authority.jurisdiction)
    known: Decision | None = pack.decisions.get(key)
    if known is not None:
        return known
    decision = _operation(pack, authority, action, None, None)
    if not any(f.rule_id == "pack.error" for f in decision.findings):
        if len(pack.decisions) >= _MAX_DECISIONS:
            pack.decisions.clear()
        pack.decisions[key] = decision
    return decision


def authorize_staff_access(
    pack: PolicyPack,
    staff: Staff,
    subject_jurisdiction: str,
    *,
    justification: str,
    demand_approved: bool = False,
    requesting: str | None = None,
) -> Decision:
    """May ``staff`` read the data of a subject in ``subject_jurisdiction``?

    ``justification`` is ``demand`` (then ``demand_approved`` and ``requesting``, the
    requesting authority's jurisdiction, matter), ``tos_investigation`` or ``user_request``.
    """
    staff_uid = {"type": "Staff", "id": staff.id}
    subject_uid = {"type": "Subject", "id": "subject"}
    subject = {
        "uid": subject_uid,
        "attrs": {
            "jurisdiction": {"__entity": {"type": "Jurisdiction", "id": subject_jurisdiction}}
        },
        "parents": [],
    }
    context: dict[str, Any] = {"justification": justification, "demand_approved": demand_approved}
    codes = [subject_jurisdiction]
    if requesting is not None:
        context["requesting"] = {"__entity": {"type": "Jurisdiction", "id": requesting}}
        codes.append(requesting)
    entities = [
        *_staff_entity(pack, staff, staff_uid),
        json.dumps(subject),
        *pack.entities.pick(set(codes) - {staff.location}),
    ]
    subject_uid = {"type": "Subject", "id": "subject"}
    return _ask(pack, "staff.access", (staff_uid, subject_uid, context), entities)


def authorize(
    pack: PolicyPack,
    principal: Staff | Authority,
    action: str,
    *,
    approval: Approval | None = None,
    role: str | None = None,
) -> Decision:
    """May ``principal`` perform the API or console operation ``action``?

    ``demand.approve`` needs ``approval``; ``demand.sign_off`` needs the ``role`` the
    escalation named. Operations are the actions of ``schema.cedarschema``.
    """
    if isinstance(principal, Authority) and approval is None and role is None:
        return _authority_decision(pack, principal, action)
    return _operation(pack, principal, action, approval, role)


def _operation(
    pack: PolicyPack,
    principal: Staff | Authority,
    action: str,
    approval: Approval | None,
    role: str | None,
) -> Decision:
    """:func:`authorize`, asked of Cedar."""
    service = {"type": "Service", "id": "custodes"}
    if isinstance(principal, Staff):
        uid = {"type": "Staff", "id": principal.id}
        entities = _staff_entity(pack, principal, uid)
    else:
        uid = {"type": "Authority", "id": principal.id}
        entities = _authority_entity(pack, principal, uid)
    context: dict[str, Any] = {}
    if approval is not None:
        staff_ref = [{"__entity": {"type": "Staff", "id": s}} for s in sorted(approval.approved_by)]
        context = {
            "requesting": {"__entity": {"type": "Jurisdiction", "id": approval.requesting}},
            "affected": {"__entity": {"type": "Area", "id": "affected"}},
            "intake_by": {"__entity": {"type": "Staff", "id": approval.intake_by}},
            "approved_by": staff_ref,
        }
        entities += [pack.entities.area("affected", approval.affected)]
    if role is not None:
        context = {"role": role}
    return _ask(pack, action, (uid, service, context), entities)
