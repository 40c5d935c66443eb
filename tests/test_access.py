"""Staff access: justification, policy, capabilities, logged reads, access transparency."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from custodes.errors import AuthError, ConflictError, ForbiddenError, InputError
from custodes.events import (
    STAFF_ACCESS_DENIED,
    STAFF_ACCESS_GRANTED,
    STAFF_ACCESS_READ,
    STAFF_ACCESS_REVOKED,
    Opening,
    check_opening,
    parse_event,
)
from custodes.ledger import Ledger
from custodes.model import DataCategory, Staff, Target, TargetKind
from custodes.platform import FIXTURES, ReferencePlatform, build_reference_platform
from custodes.policy import PolicyPack, load_pack
from custodes.service import Services, openings_of
from custodes.service.access import (
    AccessRequest,
    Justification,
    JustificationKind,
    list_accesses,
    request_access,
    revoke_access,
)
from custodes.service.gateway import AccessGateway, format_token, parse_token
from custodes.service.staff import register_staff
from custodes.store import open_store
from support import Clock

SUBSCRIBER = DataCategory.SUBSCRIBER_INFO
SESSIONS = DataCategory.IP_SESSION_LOGS
US_PERSON = FIXTURES.us_person
DE_PERSON = FIXTURES.de_subscriber


@pytest.fixture(scope="module")
def pack() -> PolicyPack:
    return load_pack()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferencePlatform]:
    path = tmp_path_factory.mktemp("platform") / "platform.db"
    build_reference_platform(path, accounts=120, region_accounts=10)
    with ReferencePlatform(path) as p:
        yield p


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2024, 6, 4, 12, tzinfo=UTC))


@pytest.fixture
def services(
    database_url: str, pack: PolicyPack, platform: ReferencePlatform, clock: Clock
) -> Iterator[Services]:
    store = open_store(database_url)
    s = Services(store, Ledger(store), pack, platform, clock=clock)
    register_staff(s, Staff("admin", frozenset({"admin"}), "IE"), by=None)
    for member in (
        Staff("support-ie", frozenset({"support"}), "IE"),
        Staff("support-us", frozenset({"support"}), "US-CA"),
        Staff("ts-cn", frozenset({"trust_safety"}), "CN"),
        Staff("ts-us", frozenset({"trust_safety"}), "US-NY"),
        Staff("approver", frozenset({"approver"}), "IE"),
    ):
        register_staff(s, member, by="admin")
    yield s
    store.close()


def _events(services: Services, start: int) -> list[tuple[int, str]]:
    size = services.ledger.size()
    return [
        (i, parse_event(e).kind) for i, e in enumerate(services.ledger.entries(start, size), start)
    ]


def _support(subjects: tuple[Target, ...] = (US_PERSON,), **kw: object) -> AccessRequest:
    j = Justification(JustificationKind.USER_REQUEST, "ticket-4711")
    return AccessRequest("support-ie", subjects, (SUBSCRIBER, SESSIONS), j, **kw)  # type: ignore[arg-type]


def test_access_without_justification_is_refused_and_recorded(services: Services) -> None:
    start = services.ledger.size()
    request = AccessRequest("support-ie", (US_PERSON, DE_PERSON), (SUBSCRIBER,), None)
    with pytest.raises(ForbiddenError) as err:
        request_access(services, request)
    assert err.value.evidence["rules"] == ["staff.no_justification"]
    assert [k for _, k in _events(services, start)] == [STAFF_ACCESS_DENIED] * 2
    event = parse_event(services.ledger.entry(start))
    assert event.facts["justification"] == "none"
    assert event.facts["subject_jurisdictions"] == ("US-NY",)
    [entry] = list_accesses(services, US_PERSON)
    assert (entry.kind, entry.justification, entry.rules) == (
        "denied",
        "none",
        ("staff.no_justification",),
    )


def test_staff_in_a_local_access_only_state_cannot_read_a_foreign_subject(
    services: Services,
) -> None:
    j = Justification(JustificationKind.TOS_INVESTIGATION, "case-2020-0604")
    with pytest.raises(ForbiddenError) as err:
        request_access(services, AccessRequest("ts-cn", (US_PERSON,), (SUBSCRIBER,), j))
    assert err.value.evidence["rules"] == ["staff.local_access_only"]
    [denied] = list_accesses(services, US_PERSON)
    assert (denied.kind, denied.staff_location) == ("denied", "CN")
    # the same justification from a colleague outside that state is accepted
    cap = request_access(services, AccessRequest("ts-us", (US_PERSON,), (SUBSCRIBER,), j))
    assert [e.kind for e in list_accesses(services, US_PERSON)] == ["denied", "granted"]
    assert cap.justification is JustificationKind.TOS_INVESTIGATION


def test_a_justification_the_role_does_not_carry_is_refused(services: Services) -> None:
    # support may help users, not investigate abuse; an approver may not ask at all
    j = Justification(JustificationKind.TOS_INVESTIGATION, "case-1")
    with pytest.raises(ForbiddenError) as err:
        request_access(services, AccessRequest("support-ie", (US_PERSON,), (SUBSCRIBER,), j))
    assert err.value.evidence["rules"] == ["staff.access.default_deny"]
    with pytest.raises(ForbiddenError) as err:
        request_access(services, AccessRequest("approver", (US_PERSON,), (SUBSCRIBER,), j))
    assert "staff_access.request.default_deny" in err.value.evidence["rules"]
    assert [e.kind for e in list_accesses(services, US_PERSON)] == ["denied", "denied"]


def test_unregistered_staff_is_refused_and_nothing_is_logged(services: Services) -> None:
    start = services.ledger.size()
    j = Justification(JustificationKind.USER_REQUEST, "ticket-1")
    with pytest.raises(ForbiddenError):
        request_access(services, AccessRequest("intruder", (US_PERSON,), (SUBSCRIBER,), j))
    assert services.ledger.size() == start


def test_a_demand_that_is_not_approved_justifies_nothing(services: Services) -> None:
    j = Justification(JustificationKind.DEMAND, "d_unknown")
    with pytest.raises(ForbiddenError) as err:
        request_access(services, AccessRequest("support-ie", (US_PERSON,), (SUBSCRIBER,), j))
    assert "staff.demand_not_approved" in err.value.evidence["rules"]


def test_granted_access_logs_each_subject_and_every_read(services: Services) -> None:
    start = services.ledger.size()
    cap = request_access(services, _support((US_PERSON, DE_PERSON)))
    assert len(cap.events) == 2
    assert cap.expires_at - cap.issued_at == timedelta(minutes=15)
    assert cap.token not in repr(cap)
    gateway = AccessGateway(services)
    first = gateway.read(cap.token, staff_id="support-ie", subject=US_PERSON, categories=[SESSIONS])
    second = gateway.read(
        cap.token, staff_id="support-ie", subject=DE_PERSON, categories=[SUBSCRIBER, SESSIONS]
    )
    kinds = [k for _, k in _events(services, start)]
    assert kinds == [STAFF_ACCESS_GRANTED] * 2 + [STAFF_ACCESS_READ] * 2
    read = parse_event(services.ledger.entry(second.index))
    assert read.facts["categories"] == ("ip_session_logs", "subscriber_info")
    assert b"u-de-subscriber" not in services.ledger.entry(second.index)
    subject = openings_of(services, second.index)["subject"]
    assert isinstance(subject, Opening) and subject.value == str(DE_PERSON)
    check_opening(read, "subject", subject)
    granted = parse_event(services.ledger.entry(cap.events[0]))
    assert granted.facts["pack"] == services.pack.hash
    assert granted.facts["justification"] == "user_request"
    assert [(e.kind, e.index) for e in list_accesses(services, US_PERSON)] == [
        ("granted", cap.events[0]),
        ("read", first.index),
    ]


def test_reads_outside_the_capability_are_refused_and_recorded(
    services: Services, clock: Clock
) -> None:
    cap = request_access(services, _support())
    gateway = AccessGateway(services)
    cases = [
        ({"staff_id": "support-us", "subject": US_PERSON}, [SUBSCRIBER], "capability.holder"),
        ({"staff_id": "support-ie", "subject": DE_PERSON}, [SUBSCRIBER], "capability.subject"),
        (
            {"staff_id": "support-ie", "subject": US_PERSON},
            [DataCategory.CONTENT],
            "capability.categories",
        ),
        ({"staff_id": "support-ie", "subject": US_PERSON}, [], "capability.categories"),
    ]
    for who, categories, rule in cases:
        with pytest.raises(ForbiddenError) as err:
            gateway.read(cap.token, categories=categories, **who)  # type: ignore[arg-type]
        assert err.value.evidence["rules"] == [rule]
        [index] = err.value.evidence["events"]
        event = parse_event(services.ledger.entry(index))
        assert (event.kind, event.facts["rules"]) == (STAFF_ACCESS_DENIED, (rule,))
    clock.now += timedelta(minutes=15)
    with pytest.raises(ForbiddenError) as err:
        gateway.read(cap.token, staff_id="support-ie", subject=US_PERSON, categories=[SUBSCRIBER])
    assert err.value.evidence["rules"] == ["capability.expired"]
    kinds = [e.kind for e in list_accesses(services, US_PERSON)]
    assert kinds == ["granted", "denied", "denied", "denied", "denied"]
    assert [e.kind for e in list_accesses(services, DE_PERSON)] == ["denied"]


def test_forged_or_malformed_tokens_are_refused_without_an_event(services: Services) -> None:
    cap = request_access(services, _support())
    gateway = AccessGateway(services)
    start = services.ledger.size()
    cap_id, secret = parse_token(cap.token)
    forged = format_token(cap_id, bytes(32))
    unknown = format_token("cap_" + "0" * 24, secret)
    for token in (forged, unknown, "", "cap_x.y", cap.token + "A", cap.token.upper()):
        with pytest.raises(AuthError):
            gateway.read(token, staff_id="support-ie", subject=US_PERSON, categories=[SUBSCRIBER])
    assert services.ledger.size() == start


def test_revocation_stops_reads_in_every_process(services: Services) -> None:
    cap = request_access(services, _support())
    warm = AccessGateway(services)  # has the capability cached, as a busy process would
    warm.read(cap.token, staff_id="support-ie", subject=US_PERSON, categories=[SUBSCRIBER])
    with pytest.raises(ForbiddenError):
        revoke_access(services, cap.id, "support-us")  # neither holder nor grantor
    [revoked] = revoke_access(services, cap.id, "approver")
    assert parse_event(services.ledger.entry(revoked)).kind == STAFF_ACCESS_REVOKED
    for gateway in (warm, AccessGateway(services)):
        with pytest.raises(ForbiddenError) as err:
            gateway.read(
                cap.token, staff_id="support-ie", subject=US_PERSON, categories=[SUBSCRIBER]
            )
        assert err.value.evidence["rules"] == ["capability.revoked"]
    with pytest.raises(ConflictError):
        revoke_access(services, cap.id, "support-ie")
    kinds = [e.kind for e in list_accesses(services, US_PERSON)]
    assert kinds == ["granted", "read", "revoked", "denied", "denied"]


def test_concurrent_reads_each_get_their_own_durable_event(services: Services) -> None:
    cap = request_access(services, _support((US_PERSON, DE_PERSON)))
    gateway = AccessGateway(services)
    start = services.ledger.size()
    indexes: list[int] = []
    lock = threading.Lock()

    def reader(n: int) -> None:
        subject = US_PERSON if n % 2 else DE_PERSON
        for _ in range(10):
            r = gateway.read(
                cap.token, staff_id="support-ie", subject=subject, categories=[SESSIONS]
            )
            with lock:
                indexes.append(r.index)

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(indexes) == list(range(start, start + 80))
    assert {k for _, k in _events(services, start)} == {STAFF_ACCESS_READ}
    reads = [e for e in list_accesses(services, US_PERSON) if e.kind == "read"]
    assert len(reads) == 40


def test_access_transparency_never_names_the_staff_member(services: Services) -> None:
    cap = request_access(services, _support())
    AccessGateway(services).read(
        cap.token, staff_id="support-ie", subject=US_PERSON, categories=[SUBSCRIBER]
    )
    for entry in list_accesses(services, US_PERSON):
        assert "support-ie" not in repr(entry)
        assert entry.staff_location == "IE"
    assert list_accesses(services, Target(TargetKind.ACCOUNT, "u-nobody")) == ()


def test_access_transparency_pages_by_log_index(services: Services) -> None:
    cap = request_access(services, _support())
    gateway = AccessGateway(services)
    for _ in range(4):
        gateway.read(cap.token, staff_id="support-ie", subject=US_PERSON, categories=[SUBSCRIBER])
    everything = list_accesses(services, US_PERSON)
    assert [e.kind for e in everything] == ["granted"] + ["read"] * 4
    pages, after = [], None
    while page := list_accesses(services, US_PERSON, after=after, limit=2):
        pages.append(page)
        after = page[-1].index
    assert [len(p) for p in pages] == [2, 2, 1]
    assert tuple(e for p in pages for e in p) == everything
    with pytest.raises(InputError):
        list_accesses(services, US_PERSON, limit=0)


def test_an_unknown_subject_is_refused(services: Services) -> None:
    ghost = Target(TargetKind.ACCOUNT, "u-ghost")
    with pytest.raises(ForbiddenError) as err:
        request_access(services, _support((ghost,)))
    assert err.value.evidence["rules"] == ["staff.unknown_subject"]
    [entry] = list_accesses(services, ghost)
    assert entry.kind == "denied"


@pytest.mark.parametrize(
    "bad",
    [
        {"subjects": ()},
        {"subjects": (US_PERSON, US_PERSON)},
        {"subjects": (Target(TargetKind.SELECTOR, "all free accounts"),)},
        {"categories": ()},
        {"ttl": timedelta(hours=9)},
        {"ttl": timedelta(seconds=5)},
        {"staff_id": ""},
    ],
)
def test_malformed_requests_are_input_errors(bad: dict[str, object]) -> None:
    fields: dict[str, object] = {
        "staff_id": "support-ie",
        "subjects": (US_PERSON,),
        "categories": (SUBSCRIBER,),
        "justification": Justification(JustificationKind.USER_REQUEST, "t-1"),
    }
    with pytest.raises(InputError):
        AccessRequest(**{**fields, **bad})  # type: ignore[arg-type]


@pytest.mark.parametrize("reference", ["", " ticket", "a" * 129, "tick et", "ticket\n"])
def test_justification_references_are_checked(reference: str) -> None:
    with pytest.raises(InputError):
        Justification(JustificationKind.USER_REQUEST, reference)


def test_token_round_trip_and_non_canonical_forms() -> None:
    cap_id, secret = "cap_" + "ab" * 12, bytes(range(32))
    token = format_token(cap_id, secret)
    assert parse_token(token) == (cap_id, secret)
    # the last base64url character carries two unused bits: setting one gives the same bytes
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    same_bytes = token[:-1] + alphabet[alphabet.index(token[-1]) + 1]
    for bad in (token + "=", token.replace(".", ":"), "x" * 200, same_bytes, token[:-1]):
        with pytest.raises(AuthError):
            parse_token(bad)
    with pytest.raises(InputError):
        format_token("not-a-capability", secret)
