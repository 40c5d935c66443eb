"""Screening's quick path decides exactly as the checked one.

:func:`custodes.policy.evaluate` keeps the entities that repeat from one demand to the next
(the authority, the places, one ``Target`` entity per class of targets) parsed, per pack, and
asks Cedar each check's questions with only that check's policies. ``check_schema=True``
builds every entity afresh and validates it. These tests hold the two to the same findings
over the pack's own cases and many random demands, and hold per-check policies to the whole
pack's.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import cedarpy
import pytest

import custodes.policy.pack as pack_module
import custodes.policy.screening as screening_module
from custodes.errors import InputError
from custodes.model import (
    Authority,
    AuthorityKind,
    CallbackStatus,
    DataCategory,
    Demand,
    DemandKind,
    EvidenceRef,
    EvidenceStatus,
    InstrumentKind,
    LegalInstrument,
    Nondisclosure,
    Offence,
    Restriction,
    RestrictionAction,
    ScreeningContext,
    SignatureStatus,
    Standing,
    Subject,
    Target,
    TargetKind,
    TimeRange,
)
from custodes.policy import DEFAULT_PACK, PolicyPack, evaluate, load_pack
from custodes.policy.cases import screen_inputs
from custodes.policy.screening import _Screening

NOW = datetime(2024, 6, 4, 12, tzinfo=UTC)
PLACES = ["US", "US-CA", "US-NY", "US-TX", "CN", "CN-GD", "DE", "DE-BE", "GB", "GB-ENG",
          "IE", "FR", "IN", "BR", "RU", "SG", "HK", "XK"]  # fmt: skip
REGIONS = ["US", "IE", "SG", "DE", "CN"]
AUTHORITIES: list[Authority | None] = [
    Authority("fbi", "Federal Bureau of Investigation", AuthorityKind.POLICE, "US"),
    Authority("sfpd", "San Francisco Police", AuthorityKind.POLICE, "US-CA"),
    Authority("ndcal", "N.D. Cal.", AuthorityKind.COURT, "US-CA"),
    Authority("mps", "Ministry of Public Security", AuthorityKind.POLICE, "CN"),
    Authority("bka", "Bundeskriminalamt", AuthorityKind.POLICE, "DE"),
    Authority("lka-be", "LKA Berlin", AuthorityKind.POLICE, "DE-BE"),
    Authority("met", "Metropolitan Police", AuthorityKind.POLICE, "GB-ENG"),
    Authority("xk", "Somewhere", AuthorityKind.POLICE, "XK"),
    Authority("gone", "Suspended", AuthorityKind.PROSECUTOR, "US", Standing.SUSPENDED),
    None,
]


@pytest.fixture(scope="module")
def pack() -> PolicyPack:
    return load_pack()


def _subject(rng: random.Random, target: Target) -> Subject | None:
    if target.is_selector or rng.random() < 0.1:
        return None
    affected: frozenset[str] = frozenset()
    if target.kind is not TargetKind.ACCOUNT:
        affected = frozenset(rng.sample(PLACES[:-1], rng.randrange(0, 4)))
    place = rng.choice(PLACES[:-1])
    return Subject(target, place, rng.choice(REGIONS), rng.choice(["free", "business"]),
                   affected=affected)  # fmt: skip


def _targets(rng: random.Random) -> list[Target]:
    n = rng.choice([1, 1, 2, 3, 5, 12, 25, 26])
    out: dict[Target, None] = {}
    while len(out) < n:
        kind = rng.choice(list(TargetKind))
        ident = f"{kind.value[0]}-{rng.randrange(60)}"
        if kind is TargetKind.SELECTOR or rng.random() < 0.03:
            ident = f"everyone named {rng.choice(['Li', 'Smith', 'Müller'])}"
        out[Target(kind, ident)] = None
    return list(out)


def _random(rng: random.Random, pack: PolicyPack, n: int) -> tuple[Any, ...]:
    """A random demand, its authority, subjects and context (shapes Demand accepts)."""
    authority = rng.choice(AUTHORITIES)
    kind = rng.choice(list(DemandKind))
    restriction = None
    categories: tuple[DataCategory, ...] = ()
    if kind is DemandKind.RESTRICTION:
        territories = tuple(sorted(rng.sample(PLACES, rng.randrange(0, 3))))
        restriction = Restriction(rng.choice(list(RestrictionAction)), territories)
    else:
        categories = tuple(rng.sample(list(DataCategory), rng.randrange(1, 4)))
    offences = [*pack.tables.offences, "shoplifting"]
    gag = rng.choice([None, Nondisclosure(None), Nondisclosure(date(2024, 6, 4) +
                      timedelta(days=rng.randrange(-10, 900)))])  # fmt: skip
    evidence = tuple(EvidenceRef(f"{i:02x}" * 32, platform_ref=f"ev-{i}")
                     for i in range(rng.randrange(0, 3)))  # fmt: skip
    targets = _targets(rng)
    span = rng.choice([None, 10, 90, 400])
    demand = Demand(
        f"d_{n}",
        authority.id if authority else None,
        kind,
        LegalInstrument(
            rng.choice(list(InstrumentKind)), document_sha256=rng.choice([None, "9f" * 32])
        ),
        tuple(targets),
        NOW,
        categories,
        time_range=None if span is None else TimeRange(NOW - timedelta(days=span), NOW),
        offence=rng.choice([None, Offence(rng.choice(offences))]),
        restriction=restriction,
        nondisclosure=gag,
        evidence=evidence,
        claims_tos_violation=rng.random() < 0.2,
    )
    subjects = {t: _subject(rng, t) for t in targets}
    context = ScreeningContext(
        NOW,
        rng.choice(list(SignatureStatus)),
        rng.choice(list(CallbackStatus)),
        rng.choice([1, 30, 500, 5000]),
        tuple(rng.choice(list(EvidenceStatus)) for _ in evidence),
    )
    return demand, authority, subjects, context


def _demands(pack: PolicyPack, count: int, seed: int) -> list[tuple[Any, ...]]:
    rng = random.Random(seed)
    out: list[tuple[Any, ...]] = []
    while len(out) < count:
        try:
            out.append(_random(rng, pack, len(out)))
        except InputError:
            continue
    return out


def _cases(pack: PolicyPack) -> list[tuple[Any, ...]]:
    """The screen cases of the pack's own tests, as evaluate's arguments."""
    out = []
    for path in pack.tests:
        for case in json.loads(path.read_text(encoding="utf-8"))["cases"]:
            if "screen" not in case:
                continue
            out.append(screen_inputs(case["screen"]))
    return out


def test_the_quick_path_decides_the_pack_cases_as_the_checked_one(pack: PolicyPack) -> None:
    cases = _cases(pack)
    assert len(cases) > 30
    for demand, authority, subjects, context in cases:
        checked = evaluate(pack, demand, authority, subjects, context, check_schema=True)
        assert evaluate(pack, demand, authority, subjects, context) == checked  # built
        assert evaluate(pack, demand, authority, subjects, context) == checked  # remembered


def test_the_quick_path_decides_random_demands_as_the_checked_one(
    pack: PolicyPack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pack_module, "_MAX_LAYERS", 40)  # so that layers are also forgotten
    fresh = load_pack()
    demands = _demands(fresh, 600, seed=7)
    rules: set[str] = set()
    for demand, authority, subjects, context in demands:
        checked = evaluate(fresh, demand, authority, subjects, context, check_schema=True)
        quick = evaluate(fresh, demand, authority, subjects, context)
        assert quick == checked, demand
        rules |= {f.rule_id for f in quick}
    assert len(fresh.entities.layers) == 40
    assert {"jurisdiction.domestic", "jurisdiction.data_outside", "scope.target_cap"} <= rules
    assert len(rules) > 40 and "pack.error" not in rules
    # Again in another order, every layer now built by some other demand or forgotten.
    for demand, authority, subjects, context in reversed(demands):
        checked = evaluate(fresh, demand, authority, subjects, context, check_schema=True)
        assert evaluate(fresh, demand, authority, subjects, context) == checked, demand


def test_a_layer_key_stands_for_exactly_its_entities(pack: PolicyPack) -> None:
    seen: dict[Any, list[str]] = {}
    hits = 0
    for demand, authority, subjects, context in _demands(pack, 1500, seed=11):
        s = _Screening(pack, demand, authority, subjects, context)
        classes, _ = s.target_classes()
        key, entities = s.layer_key(classes), s.layer_entities(classes)
        hits += key in seen
        assert seen.setdefault(key, entities) == entities
    assert hits > 100, "the random demands share layers"


def test_each_check_asked_with_its_own_policies_decides_as_with_the_whole_pack(
    pack: PolicyPack, monkeypatch: pytest.MonkeyPatch
) -> None:
    demands = _demands(pack, 200, seed=3) + _cases(pack)
    alone = [evaluate(pack, *d) for d in demands]
    whole = cedarpy.PolicySet.from_str(pack.policy_text)
    monkeypatch.setattr(PolicyPack, "policies_for", lambda self, action: whole)
    assert [evaluate(pack, *d) for d in demands] == alone


def test_a_pack_that_lets_a_long_demand_through_asks_its_targets_second(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Over the cap, targets are asked against a second store once the scope check passed.
    copy = tmp_path / "pack"
    shutil.copytree(DEFAULT_PACK, copy)
    scope = copy / "scope.cedar"
    text = scope.read_text(encoding="utf-8")
    text = text.replace('resource.target_count <= Limits::"pack".target_cap', "true")
    text = text.replace("when { resource.target_count > Limits::\"pack\".target_cap }",
                        "when { false }")  # fmt: skip
    scope.write_text(text, encoding="utf-8")
    loose = load_pack(copy)
    long = [d for d in _demands(loose, 300, seed=5) if len(d[0].targets) > 25]
    assert len(long) > 10
    targeted = 0
    for demand, authority, subjects, context in long:
        checked = evaluate(loose, demand, authority, subjects, context, check_schema=True)
        assert evaluate(loose, demand, authority, subjects, context) == checked
        targeted += any(f.target is not None for f in checked)
    assert targeted > 5


def test_targets_the_platform_describes_alike_share_one_target_entity(pack: PolicyPack) -> None:
    # Reaching no one else, or only the subject's own place, reaches the same places.
    fbi = AUTHORITIES[0]
    assert fbi is not None
    alone, with_self = Target(TargetKind.MEETING, "m-1"), Target(TargetKind.MEETING, "m-2")
    subjects: dict[Target, Subject | None] = {
        alone: Subject(alone, "US-NY", "US", "business"),
        with_self: Subject(with_self, "US-NY", "US", "business", affected=frozenset({"US-NY"})),
    }
    demand = Demand("d_1", fbi.id, DemandKind.RESTRICTION,
                    LegalInstrument(InstrumentKind.COURT_ORDER, document_sha256="9f" * 32),
                    (alone, with_self), NOW,
                    restriction=Restriction(RestrictionAction.END_MEETING, ()))  # fmt: skip
    context = ScreeningContext(NOW, SignatureStatus.VALID)
    classes, asks = _Screening(pack, demand, fbi, subjects, context).target_classes()
    assert len(classes) == 1
    assert [a.resource["id"] for a in asks] == ["t0", "t0"]
    checked = evaluate(pack, demand, fbi, subjects, context, check_schema=True)
    assert evaluate(pack, demand, fbi, subjects, context) == checked
    assert {f.target for f in checked if f.rule_id.startswith("jurisdiction.")} == {
        alone,
        with_self,
    }


def _counting_cedar(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the questions screening puts to Cedar from now on: ``[questions]``."""
    asked = [0]
    real = cedarpy.is_authorized_batch

    def counting(requests: list[Any], *args: Any, **kwargs: Any) -> Any:
        asked[0] += len(requests)
        return real(requests, *args, **kwargs)

    monkeypatch.setattr(cedarpy, "is_authorized_batch", counting)
    return asked


def test_answers_remembered_decide_as_cedar_asked_afresh(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The same demands again with other volumes and signatures: every answer remembered
    # must be the one Cedar gives afresh, and most must be remembered.
    fresh = load_pack()
    rng = random.Random(13)
    demands = _demands(fresh, 120, seed=17)
    asked = _counting_cedar(monkeypatch)

    def rounds(count: int) -> tuple[int, int]:
        quick_asks = fresh_asks = 0
        for _ in range(count):
            for demand, authority, subjects, given in demands:
                context = replace(
                    given,
                    volume=rng.choice([1, 30, 499, 500, 501, 5000]),
                    signature=rng.choice(list(SignatureStatus)),
                )
                before = asked[0]
                checked = evaluate(fresh, demand, authority, subjects, context, check_schema=True)
                between = asked[0]
                quick = evaluate(fresh, demand, authority, subjects, context)
                assert quick == checked, demand
                fresh_asks += between - before
                quick_asks += asked[0] - between
        return quick_asks, fresh_asks

    quick_asks, fresh_asks = rounds(3)
    print(f"Cedar asked {quick_asks} of {fresh_asks} questions")
    assert quick_asks < fresh_asks / 2, "most questions were answered from memory"
    rules = {f.rule_id for d in demands for f in evaluate(fresh, *d)}
    assert {"scope.volume", "requester.signature_invalid"} & rules
    # With room for only a few answers, the oldest are forgotten and asked again.
    monkeypatch.setattr(screening_module, "_MAX_VERDICTS", 50)
    fresh.verdicts.clear()
    rounds(1)
    assert len(fresh.verdicts) == 50


def _warrant_for_one_account(
    n: str,
) -> tuple[Authority, Demand, dict[Target, Subject | None]]:
    """The FBI's search warrant ``d_<n>`` for one Californian account held in the US."""
    fbi = AUTHORITIES[0]
    assert fbi is not None
    account = Target(TargetKind.ACCOUNT, f"a-{n}")
    demand = Demand(f"d_{n}", fbi.id, DemandKind.DISCLOSURE,
                    LegalInstrument(InstrumentKind.SEARCH_WARRANT, document_sha256="9f" * 32),
                    (account,), NOW, (DataCategory.SUBSCRIBER_INFO,), offence=Offence("fraud"),
                    time_range=TimeRange(NOW - timedelta(days=30), NOW))  # fmt: skip
    return fbi, demand, {account: Subject(account, "US-CA", "US", "free")}


def test_a_check_is_asked_again_when_an_attribute_it_reads_changes(
    pack: PolicyPack, monkeypatch: pytest.MonkeyPatch
) -> None:
    fbi, demand, subjects = _warrant_for_one_account("1")
    threshold = pack.tables.limits.volume_threshold
    below = ScreeningContext(NOW, SignatureStatus.VALID, volume=threshold)
    above = replace(below, volume=threshold + 1)
    asked = _counting_cedar(monkeypatch)
    first = evaluate(pack, demand, fbi, subjects, below)
    assert "scope.volume" not in {f.rule_id for f in first}
    start = asked[0]
    second = evaluate(pack, demand, fbi, subjects, above)
    assert asked[0] - start == 1, "only the check that reads the volume is asked again"
    assert "scope.volume" in {f.rule_id for f in second}
    assert second == evaluate(pack, demand, fbi, subjects, above, check_schema=True)
    start = asked[0]
    assert evaluate(pack, demand, fbi, subjects, below) == first
    assert asked[0] == start, "every answer remembered"


@pytest.mark.parametrize(
    "condition",
    ["resource.volume > 3", 'resource["volume"] > 3', "resource has volume",
     'context.item == "volume"'],
)  # fmt: skip
def test_every_way_a_policy_reads_an_attribute_names_it(condition: str) -> None:
    text = f'permit (principal, action == Action::"gag", resource) when {{ {condition} }};'
    policy = json.loads(cedarpy.policies_to_json_str(text))["staticPolicies"]["policy0"]
    assert "volume" in pack_module._names(policy)


def test_a_pack_names_what_each_check_reads(pack: PolicyPack) -> None:
    assert {"volume", "target_count"} <= pack.names["scope"]
    assert "volume" not in pack.names["requester"]
    assert "instrument" in pack.names["reach"]  # read through the target's demand


def test_a_pack_edited_to_read_the_volume_elsewhere_is_asked_again(tmp_path: Path) -> None:
    copy = tmp_path / "pack"
    shutil.copytree(DEFAULT_PACK, copy)
    gag = copy / "gag.cedar"
    text = gag.read_text(encoding="utf-8")
    bulk = (
        '@id("gag.bulk")\n@outcome("escalate")\n@role("reviewer")\n@reason("bulk")\n'
        '@remedy("")\nforbid (principal, action == Action::"gag", resource)\n'
        "when { resource.volume > 100 };\n"
    )
    gag.write_text(text + "\n" + bulk, encoding="utf-8")
    edited = load_pack(copy)
    assert "volume" in edited.names["gag"]
    found = []
    for demand, authority, subjects, given in _demands(edited, 200, seed=23):
        if demand.nondisclosure is None:
            continue
        for volume in (100, 101, 100):
            context = replace(given, volume=volume)
            checked = evaluate(edited, demand, authority, subjects, context, check_schema=True)
            assert evaluate(edited, demand, authority, subjects, context) == checked
            found.append("gag.bulk" in {f.rule_id for f in checked})
    assert any(found) and not all(found)


def test_a_pack_that_does_not_say_what_a_check_reads_is_asked_for_every_attribute(
    pack: PolicyPack, monkeypatch: pytest.MonkeyPatch
) -> None:
    fbi, demand, subjects = _warrant_for_one_account("2")
    blind = replace(pack, names={}, verdicts={})
    context = ScreeningContext(NOW, SignatureStatus.VALID, volume=7)
    evaluate(blind, demand, fbi, subjects, context)
    asked = _counting_cedar(monkeypatch)
    evaluate(blind, demand, fbi, subjects, replace(context, volume=8))
    assert asked[0] > 1, "every check asked again: any of them might read the volume"
