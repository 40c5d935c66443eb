"""Staff access to user data, and the API authorizer, decided by the pack's Cedar rules."""

from __future__ import annotations

import pytest

from custodes.errors import ForbiddenError
from custodes.model import Authority, AuthorityKind, Outcome, Staff, Standing
from custodes.policy import Approval, PolicyPack, authorize, authorize_staff_access, load_pack


@pytest.fixture(scope="module")
def pack() -> PolicyPack:
    return load_pack()


def _blocking(decision: object) -> set[str]:
    return {f.rule_id for f in decision.findings if f.blocks}  # type: ignore[attr-defined]


def test_staff_in_the_requesting_state_cannot_read_subjects_abroad(pack: PolicyPack) -> None:
    liaison = Staff("s-liaison", frozenset({"data_custodian"}), "CN-BJ")
    decision = authorize_staff_access(
        pack, liaison, "US-NY", justification="demand", demand_approved=True, requesting="CN"
    )
    assert not decision.allowed
    assert _blocking(decision) == {"staff.requesting_state", "staff.local_access_only"}
    with pytest.raises(ForbiddenError) as exc:
        decision.check()
    assert set(exc.value.evidence["rules"]) == _blocking(decision)


def test_custodian_outside_the_requesting_state_may_execute(pack: PolicyPack) -> None:
    custodian = Staff("s-ie", frozenset({"data_custodian"}), "IE")
    decision = authorize_staff_access(
        pack, custodian, "US-NY", justification="demand", demand_approved=True, requesting="US"
    )
    decision.check()
    assert [f.rule_id for f in decision.findings] == ["staff.custodian_for_demand"]


@pytest.mark.parametrize(
    ("roles", "justification", "approved", "allowed"),
    [
        ({"data_custodian"}, "demand", False, False),
        ({"approver"}, "demand", True, False),
        ({"trust_safety"}, "tos_investigation", False, True),
        ({"support"}, "user_request", False, True),
        ({"support"}, "tos_investigation", False, False),
        ({"admin"}, "curiosity", False, False),
    ],
)
def test_access_needs_the_right_role_and_justification(
    pack: PolicyPack, roles: set[str], justification: str, approved: bool, allowed: bool
) -> None:
    staff = Staff("s-1", frozenset(roles), "US")
    decision = authorize_staff_access(
        pack, staff, "US-CA", justification=justification, demand_approved=approved
    )
    assert decision.allowed is allowed
    if not allowed:
        assert decision.findings[0].outcome is Outcome.REFUSE


def test_dual_control_rules(pack: PolicyPack) -> None:
    a1 = Staff("s-a1", frozenset({"approver"}), "IE")
    intake = Staff("s-in", frozenset({"approver", "intake"}), "IE")
    affected = frozenset({"US-CA"})
    ok = authorize(pack, a1, "demand.approve", approval=Approval("US", affected, "s-in"))
    ok.check()
    own = authorize(pack, intake, "demand.approve", approval=Approval("US", affected, "s-in"))
    assert _blocking(own) == {"api.approve_own_intake"}
    twice = authorize(
        pack, a1, "demand.approve", approval=Approval("US", affected, "s-in", frozenset({"s-a1"}))
    )
    assert _blocking(twice) == {"api.approve_twice"}


def test_nobody_in_the_requesting_state_approves_an_effect_outside_it(pack: PolicyPack) -> None:
    beijing = Staff("s-cn", frozenset({"approver"}), "CN-BJ")
    abroad = Approval("CN", frozenset({"CN-GD", "US-NY"}), "s-in")
    assert _blocking(authorize(pack, beijing, "demand.approve", approval=abroad)) == {
        "api.approver_in_requesting_state"
    }
    at_home = Approval("CN", frozenset({"CN-GD", "CN-BJ"}), "s-in")
    assert authorize(pack, beijing, "demand.approve", approval=at_home).allowed
    dublin = Staff("s-ie", frozenset({"approver"}), "IE")
    assert authorize(pack, dublin, "demand.approve", approval=abroad).allowed


def test_role_times_operation(pack: PolicyPack) -> None:
    intake = Staff("s-in", frozenset({"intake"}), "IE")
    assert authorize(pack, intake, "demand.intake").allowed
    assert not authorize(pack, intake, "demand.execute").allowed
    assert authorize(pack, intake, "demand.execute").findings[0].rule_id == (
        "demand.execute.default_deny"
    )
    auditor = Staff("s-au", frozenset({"auditor"}), "NL")
    assert authorize(pack, auditor, "audit.read").allowed
    assert not authorize(pack, auditor, "policy.activate").allowed


def test_specialists_sign_off_only_in_their_own_role(pack: PolicyPack) -> None:
    hr = Staff("s-hr", frozenset({"human_rights_reviewer"}), "NL")
    assert authorize(pack, hr, "demand.sign_off", role="human_rights_reviewer").allowed
    assert not authorize(pack, hr, "demand.sign_off", role="legal_counsel").allowed


def test_authorities_act_only_while_active(pack: PolicyPack) -> None:
    active = Authority("us-x", "X", AuthorityKind.COURT, "US")
    assert authorize(pack, active, "demand.submit").allowed
    suspended = Authority("us-x", "X", AuthorityKind.COURT, "US", Standing.SUSPENDED)
    assert not authorize(pack, suspended, "demand.submit").allowed
    assert not authorize(pack, active, "demand.approve").allowed


def test_a_malformed_question_is_refused_not_allowed(pack: PolicyPack) -> None:
    a1 = Staff("s-a1", frozenset({"approver"}), "IE")
    missing_context = authorize(pack, a1, "demand.approve")
    assert not missing_context.allowed
    assert missing_context.findings[0].rule_id == "pack.error"
    unknown = authorize(pack, a1, "demand.teleport")
    assert not unknown.allowed


def test_an_authority_asking_with_a_context_is_refused_each_time(pack: PolicyPack) -> None:
    # An authority's operations take no context: one given is an error Cedar reports, even
    # once the same operation without it has been allowed (and remembered).
    active = Authority("us-x", "X", AuthorityKind.COURT, "US")
    for _ in range(2):
        assert authorize(pack, active, "demand.submit").allowed
        with_role = authorize(pack, active, "demand.submit", role="legal_counsel")
        assert [f.rule_id for f in with_role.findings] == ["pack.error"]
        approval = Approval("US", frozenset({"US"}), "s-1")
        with_approval = authorize(pack, active, "demand.submit", approval=approval)
        assert [f.rule_id for f in with_approval.findings] == ["pack.error"]
        assert not with_role.allowed and not with_approval.allowed
