"""The policy pack: loading, its hash, load errors, determinism, and what findings say."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from custodes.errors import ConfigError
from custodes.model import (
    Authority,
    AuthorityKind,
    DataCategory,
    Demand,
    DemandKind,
    InstrumentKind,
    LegalInstrument,
    Offence,
    Outcome,
    ScreeningContext,
    SignatureStatus,
    Subject,
    Target,
    TargetKind,
    TimeRange,
)
from custodes.policy import (
    DEFAULT_PACK,
    DEMAND_CHECKS,
    PLACEHOLDERS,
    PolicyPack,
    evaluate,
    load_pack,
    pack_hash,
    run_pack_tests,
)

NOW = datetime(2024, 6, 4, 12, tzinfo=UTC)
DOC = "9f" * 32


@pytest.fixture(scope="module")
def pack() -> PolicyPack:
    return load_pack()


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    target = tmp_path / "pack"
    shutil.copytree(DEFAULT_PACK, target)
    return target


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


# -- loading ------------------------------------------------------------------------------


def test_default_pack_loads_and_every_rule_explains_itself(pack: PolicyPack) -> None:
    assert len(pack.rules) > 50
    for rule in pack.rules.values():
        assert rule.reason, rule.id
        assert rule.remedy or rule.outcome is Outcome.PASS, rule.id
        assert (rule.role is not None) == (rule.outcome is Outcome.ESCALATE), rule.id
    for check in DEMAND_CHECKS:
        assert any(check in r.actions for r in pack.rules.values()), check


def test_default_pack_passes_its_own_cases(pack: PolicyPack) -> None:
    results = run_pack_tests(pack)
    assert len(results) > 40
    assert [r.name for r in results if not r.passed] == []


def test_pack_hash_is_sha256_of_the_sha256sum_manifest(copy: Path) -> None:
    files = sorted(
        (p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file()),
        key=str.encode,
    )
    manifest = "".join(
        f"{hashlib.sha256((copy / f).read_bytes()).hexdigest()}  {f}\n" for f in files
    )
    assert pack_hash(copy) == hashlib.sha256(manifest.encode()).hexdigest()
    assert load_pack(copy).hash == pack_hash(DEFAULT_PACK)


def test_pack_hash_matches_coreutils(copy: Path) -> None:
    if shutil.which("sha256sum") is None:
        pytest.skip("sha256sum not installed")
    listing = subprocess.run(
        "find . -type f | LC_ALL=C sort | sed 's|^\\./||' | xargs sha256sum | sha256sum",
        shell=True,
        cwd=copy,
        capture_output=True,
        text=True,
        check=True,
    )
    assert listing.stdout.split()[0] == pack_hash(copy)


def test_any_change_changes_the_hash(copy: Path) -> None:
    before = load_pack(copy).hash
    _edit(copy / "pack.toml", "target_cap = 25", "target_cap = 24")
    after = load_pack(copy)
    assert after.hash != before
    assert after.tables.limits.target_cap == 24


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        ("routes.toml", 'requesting = ["GB"]', 'requesting = ["XX"]', "unknown 'XX'"),
        ("routes.toml", '"cloud_act_order"]', '"royal_decree"]', "unknown 'royal_decree'"),
        ("ladders.toml", "[GB]", "[ZZ]", "unknown jurisdiction 'ZZ'"),
        (
            "ladders.toml",
            'content = ["search_warrant", "mlat_request"]',
            'content = ["search_warrant", "telegram"]',
            "unknown 'telegram'",
        ),
        ("ladders.toml", "order = [", "dna = []\norder = [", "unknown jurisdiction 'dna'"),
        ("api.cedar", 'Role::"auditor"', 'Role::"janitor"', "unknown role 'janitor'"),
        ("gag.cedar", '@role("legal_counsel")', '@role("gag_czar")', "unknown role 'gag_czar'"),
        (
            "staff.cedar",
            'Jurisdiction::"LOCAL_ACCESS_ONLY"',
            'Jurisdiction::"NOWHERE"',
            "unknown jurisdiction 'NOWHERE'",
        ),
        (
            "jurisdictions.toml",
            'members = ["AU", "CA", "GB", "NZ", "US"]',
            'members = ["AU", "CA", "UK"]',
            "unknown 'UK'",
        ),
        ("pack.toml", "target_cap = 25", "target_cap = -1", "whole number"),
        ("pack.toml", "[limits]", "[limits]\ntarget_kap = 3", "target_kap is not a known setting"),
        ("pack.toml", "[pack]", "[pack", "not valid TOML"),
        ("offences.toml", "[fraud]", "[fraud]\nprotectd = true", "protectd is not a known setting"),
        ("scope.cedar", '@reason("the demand names no target")\n', "", "missing @reason"),
        (
            "scope.cedar",
            '@reason("the demand names no target")',
            '@reason("the demand names no {target}")',
            "unknown placeholder {target}",
        ),
        (
            "scope.cedar",
            '@id("scope.no_targets")\n@outcome("refuse")',
            '@id("scope.no_targets")\n@outcome("pass")',
            "a permit passes",
        ),
        ("scope.cedar", '@id("scope.no_targets")', '@id("scope.target_cap")', "used twice"),
        ("scope.cedar", "resource.target_count == 0", "resource.targets == 0", "do not validate"),
        (
            "routes.toml",
            'instruments = ["cloud_act_order"]',
            'instruments = ["cloud_act_order", "mlat_request"]',
            "both cover",
        ),
    ],
)
def test_load_errors_name_the_problem(
    copy: Path, file: str, old: str, new: str, message: str
) -> None:
    _edit(copy / file, old, new)
    with pytest.raises(ConfigError, match=message):
        load_pack(copy)


def test_unexpected_and_missing_files_are_load_errors(copy: Path) -> None:
    (copy / "route.toml").write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unexpected file route\.toml"):
        load_pack(copy)
    (copy / "route.toml").unlink()
    (copy / "roles.toml").unlink()
    with pytest.raises(ConfigError, match=r"roles\.toml is missing"):
        load_pack(copy)


def test_pack_checks_roles_and_jurisdictions_for_callers(pack: PolicyPack) -> None:
    assert pack.check_role("approver") == "approver"
    assert pack.check_jurisdiction("US-CA") == "US-CA"
    with pytest.raises(ConfigError):
        pack.check_role("janitor")
    with pytest.raises(ConfigError):
        pack.check_jurisdiction("XX")


# -- screening ----------------------------------------------------------------------------

FBI = Authority("us-fbi", "FBI", AuthorityKind.POLICE, "US")


def _demand(targets: tuple[Target, ...], **over: object) -> Demand:
    fields: dict[str, object] = {
        "id": "d_t",
        "authority_id": "us-fbi",
        "kind": DemandKind.DISCLOSURE,
        "instrument": LegalInstrument(InstrumentKind.SEARCH_WARRANT, document_sha256=DOC),
        "targets": targets,
        "received_at": NOW,
        "categories": (DataCategory.CONTENT,),
        "time_range": TimeRange(NOW - timedelta(days=30), NOW),
        "offence": Offence("fraud"),
    }
    fields.update(over)
    return Demand(**fields)  # type: ignore[arg-type]


def _subjects(n: int) -> dict[Target, Subject | None]:
    states = ["US-CA", "US-NY", "US-TX", "DE-BE", "GB-ENG", "CN-GD"]
    regions = ["US", "US", "US", "IE", "US", "SG"]
    return {
        Target(TargetKind.ACCOUNT, f"u-{i}"): Subject(
            Target(TargetKind.ACCOUNT, f"u-{i}"), states[i % 6], regions[i % 6], "free"
        )
        for i in range(n)
    }


def test_same_pack_same_input_same_findings(pack: PolicyPack) -> None:
    subjects = _subjects(12)
    demand = _demand(tuple(subjects))
    context = ScreeningContext(NOW, SignatureStatus.VALID)
    first = evaluate(pack, demand, FBI, subjects, context)
    again = evaluate(load_pack(), demand, FBI, dict(reversed(subjects.items())), context)
    assert first == again
    assert [f.target for f in first if f.target] == list(demand.targets)


def test_findings_are_listed_demand_items_then_targets(pack: PolicyPack) -> None:
    subjects = _subjects(3)
    findings = evaluate(
        pack, _demand(tuple(subjects)), FBI, subjects, ScreeningContext(NOW, SignatureStatus.VALID)
    )
    kinds = ["demand" if f.target is None and f.item is None else "item" if f.item else "target"
             for f in findings]  # fmt: skip
    assert kinds == sorted(kinds, key=["demand", "item", "target"].index)


def test_identical_subjects_get_identical_findings_each_naming_its_target(
    pack: PolicyPack,
) -> None:
    subjects = {
        Target(TargetKind.ACCOUNT, f"u-{i}"): Subject(
            Target(TargetKind.ACCOUNT, f"u-{i}"), "US-CA", "US", "free"
        )
        for i in range(25)
    }
    findings = evaluate(
        pack, _demand(tuple(subjects)), FBI, subjects, ScreeningContext(NOW, SignatureStatus.VALID)
    )
    per_target = [f for f in findings if f.target is not None]
    assert [f.target for f in per_target] == list(subjects)
    assert {f.rule_id for f in per_target} == {"jurisdiction.domestic"}


def test_reasons_are_plain_words_with_the_facts_filled_in(pack: PolicyPack) -> None:
    subjects = _subjects(26)
    findings = evaluate(
        pack, _demand(tuple(subjects)), FBI, subjects, ScreeningContext(NOW, SignatureStatus.VALID)
    )
    cap = next(f for f in findings if f.rule_id == "scope.target_cap")
    assert cap.reason == "the demand names 26 targets; a demand may name at most 25"
    assert "{" not in cap.remedy and cap.remedy
    assert not any(f.target for f in findings), "over the cap, targets are not examined"


def test_a_demand_typed_in_from_nobody_is_judged_only_as_such(pack: PolicyPack) -> None:
    subjects = _subjects(1)
    findings = evaluate(
        pack,
        _demand(tuple(subjects), authority_id=None),
        None,
        subjects,
        ScreeningContext(NOW, SignatureStatus.MISSING),
    )
    refused = {f.rule_id for f in findings if f.outcome is Outcome.REFUSE}
    assert {"requester.unregistered", "requester.unsigned"} <= refused
    assert not any(f.target for f in findings)


def test_an_authority_in_a_jurisdiction_the_pack_does_not_know(pack: PolicyPack) -> None:
    stranger = Authority("xx", "Somewhere", AuthorityKind.POLICE, "XK")
    subjects = _subjects(1)
    findings = evaluate(
        pack,
        _demand(tuple(subjects)),
        stranger,
        subjects,
        ScreeningContext(NOW, SignatureStatus.VALID),
    )
    assert "requester.unknown_jurisdiction" in {f.rule_id for f in findings}


def test_a_rule_that_errors_fails_closed(copy: Path) -> None:
    # Validates against the schema, but overflows at run time for two or more targets.
    _edit(
        copy / "scope.cedar",
        'when { resource.target_count > Limits::"pack".target_cap };',
        'when { resource.target_count * 9223372036854775807 > Limits::"pack".target_cap };',
    )
    subjects = _subjects(2)
    findings = evaluate(
        load_pack(copy),
        _demand(tuple(subjects)),
        FBI,
        subjects,
        ScreeningContext(NOW, SignatureStatus.VALID),
    )
    error = next(f for f in findings if f.rule_id == "pack.error")
    assert error.outcome is Outcome.REFUSE and "scope" in error.reason


def test_nothing_permitted_is_a_default_deny(copy: Path) -> None:
    _edit(copy / "scope.cedar", "resource.target_count > 0 &&", "false &&")
    subjects = _subjects(1)
    findings = evaluate(
        load_pack(copy),
        _demand(tuple(subjects)),
        FBI,
        subjects,
        ScreeningContext(NOW, SignatureStatus.VALID),
    )
    deny = next(f for f in findings if f.rule_id == "scope.default_deny")
    assert deny.outcome is Outcome.REFUSE


DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_rule_check_and_placeholder_is_documented(pack: PolicyPack) -> None:
    text = (DOCS / "policies.md").read_text(encoding="utf-8")
    missing = [r for r in pack.rules if f"`{r}`" not in text]
    missing += [c for c in (*DEMAND_CHECKS, "ladder", "reach") if f"`{c}`" not in text]
    missing += [p for p in PLACEHOLDERS if f"`{{{p}}}`" not in text]
    assert missing == []


def test_entities_built_for_screening_fit_the_schema(pack: PolicyPack) -> None:
    subjects = _subjects(12)
    for demand in (
        _demand(tuple(subjects)),
        _demand(tuple(subjects)[:3], authority_id=None),
        _demand(tuple(_subjects(30))),
    ):
        context = ScreeningContext(NOW, SignatureStatus.VALID)
        fast = evaluate(pack, demand, FBI, subjects, context)
        checked = evaluate(pack, demand, FBI, subjects, context, check_schema=True)
        assert fast == checked
        assert "pack.error" not in {f.rule_id for f in checked}
