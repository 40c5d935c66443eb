"""The data files of a policy pack, read into frozen tables.

The legal team edits TOML; this module reads it strictly. Anything it does not recognise is
a :class:`~custodes.errors.ConfigError` naming the file and the key: an unknown
jurisdiction, instrument kind, data category, offence field or role never loads silently.

* ``jurisdictions.toml`` — countries, subdivisions, groups → :class:`Jurisdictions`
* ``routes.toml`` — treaty routes → :class:`Route`, indexed by :class:`Routes`
* ``ladders.toml`` — instrument ladders → :class:`Ladders`
* ``offences.toml`` — offence categories → :class:`Offence`
* ``pack.toml`` — name, version, caps → :class:`Limits`
* ``roles.toml`` — staff roles → :class:`Role`
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any

from custodes.errors import ConfigError
from custodes.model import DataCategory, InstrumentKind, RestrictionAction

__all__ = [
    "ITEMS",
    "Jurisdictions",
    "Ladders",
    "Limits",
    "Offence",
    "Role",
    "Route",
    "Routes",
    "Tables",
    "read_tables",
]

ITEMS: frozenset[str] = frozenset(
    [c.value for c in DataCategory] + ["preservation"] + [a.value for a in RestrictionAction]
)
"""What an instrument ladder decides: data categories, preservation, restriction actions."""

_INSTRUMENTS = frozenset(k.value for k in InstrumentKind)
_COUNTRY = re.compile(r"[A-Z]{2}")
_SUBDIVISION = re.compile(r"([A-Z]{2})-[A-Z0-9]{1,3}")
_GROUP = re.compile(r"[A-Z][A-Z_]{1,31}")
_ID = re.compile(r"[a-z][a-z0-9_]{0,63}")


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path.name}: missing from the policy pack") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path.name}: not valid TOML: {exc}") from None


class _Reader:
    """Typed access to one TOML table, with errors that name file and key."""

    def __init__(self, file: str, where: str, table: Any) -> None:
        if not isinstance(table, dict):
            raise ConfigError(f"{file}: {where or 'the file'} must be a table")
        self.file, self.where, self.table = file, where, table

    def at(self, key: str) -> str:
        return f"{self.file}: {self.where}.{key}" if self.where else f"{self.file}: {key}"

    def only(self, *keys: str) -> None:
        extra = sorted(set(self.table) - set(keys))
        if extra:
            raise ConfigError(f"{self.at(extra[0])} is not a known setting")

    def text(self, key: str, default: str | None = None) -> str:
        value = self.table.get(key, default)
        if not isinstance(value, str):
            raise ConfigError(f"{self.at(key)} must be text")
        return value

    def number(self, key: str) -> int:
        value = self.table.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{self.at(key)} must be a whole number >= 0")
        return value

    def flag(self, key: str) -> bool:
        value = self.table.get(key, False)
        if not isinstance(value, bool):
            raise ConfigError(f"{self.at(key)} must be true or false")
        return value

    def words(self, key: str, allowed: Iterable[str] | None = None) -> tuple[str, ...]:
        value = self.table.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{self.at(key)} must be a list of text")
        if allowed is not None:
            known = frozenset(allowed)
            for v in value:
                if v not in known:
                    raise ConfigError(f"{self.at(key)}: unknown {v!r}")
        return tuple(value)


@dataclass(frozen=True)
class Jurisdictions:
    """Countries, subdivisions and groups, and what is inside what."""

    names: Mapping[str, str]
    countries: frozenset[str]
    groups: Mapping[str, frozenset[str]]
    parents: Mapping[str, tuple[str, ...]]
    covers: Mapping[str, frozenset[str]]

    def __contains__(self, code: object) -> bool:
        return code in self.names

    def require(self, code: str, where: str) -> str:
        """``code`` if the pack knows it, else a ``ConfigError`` naming ``where``."""
        if code not in self.names:
            raise ConfigError(f"{where}: unknown jurisdiction {code!r}")
        return code

    def expand(self, codes: Iterable[str]) -> frozenset[str]:
        """Every code inside any of ``codes`` (each included)."""
        return frozenset(c for code in codes for c in self.covers[code])

    def lineage(self, code: str, order: Iterable[str]) -> tuple[str, ...]:
        """``code``, its country, then each group of ``order`` that holds the country."""
        out = [code]
        country = code[:2] if _SUBDIVISION.fullmatch(code) else code
        if country != code and country in self.names:
            out.append(country)
        out += [g for g in order if country in self.groups.get(g, frozenset())]
        return tuple(out)


def _jurisdictions(raw: dict[str, Any]) -> Jurisdictions:
    top = _Reader("jurisdictions.toml", "", raw)
    top.only("countries", "subdivisions", "groups")
    names: dict[str, str] = {}
    parents: dict[str, list[str]] = {}
    for code in _Reader("jurisdictions.toml", "countries", raw.get("countries", {})).table:
        if not _COUNTRY.fullmatch(code):
            raise ConfigError(f"jurisdictions.toml: {code!r} is not an ISO 3166-1 alpha-2 code")
        names[code] = _Reader("jurisdictions.toml", "countries", raw["countries"]).text(code)
        parents[code] = []
    subs = _Reader("jurisdictions.toml", "subdivisions", raw.get("subdivisions", {}))
    for code in subs.table:
        m = _SUBDIVISION.fullmatch(code)
        if not m or m.group(1) not in names:
            raise ConfigError(f"jurisdictions.toml: {code!r} is not a subdivision of a country")
        names[code] = subs.text(code)
        parents[code] = [m.group(1)]
    countries = frozenset(c for c in names if _COUNTRY.fullmatch(c))
    groups: dict[str, frozenset[str]] = {}
    for name, table in _Reader("jurisdictions.toml", "groups", raw.get("groups", {})).table.items():
        g = _Reader("jurisdictions.toml", f"groups.{name}", table)
        g.only("name", "members")
        if not _GROUP.fullmatch(name) or (name in names):
            raise ConfigError(f"jurisdictions.toml: group {name!r} must be upper case, not a code")
        members = (
            countries
            if g.table.get("members") == "all"
            else frozenset(g.words("members", countries))
        )
        groups[name] = members
        names[name] = g.text("name")
        parents[name] = []
        for member in sorted(members):
            parents[member].append(name)
    children: dict[str, set[str]] = {c: {c} for c in names}
    for code, ups in parents.items():
        for up in ups:
            children[up].add(code)
    covers = {c: frozenset(_closure(c, children)) for c in names}
    return Jurisdictions(
        MappingProxyType(names),
        countries,
        MappingProxyType(groups),
        MappingProxyType({c: tuple(p) for c, p in parents.items()}),
        MappingProxyType(covers),
    )


def _closure(code: str, children: Mapping[str, set[str]]) -> set[str]:
    seen, todo = {code}, [code]
    while todo:
        for child in children[todo.pop()]:
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


@dataclass(frozen=True)
class Route:
    """A treaty route: who may use it, with which instruments, for whom, for which data."""

    id: str
    kind: str
    name: str
    requesting: tuple[str, ...]
    subjects: tuple[str, ...]
    excluded_subjects: tuple[str, ...]
    data_regions: tuple[str, ...]
    instruments: tuple[str, ...]


@dataclass(frozen=True)
class Routes:
    """All routes, and the one (if any) that could apply to a request, data region pair."""

    all: tuple[Route, ...]
    index: Mapping[tuple[str, str, str], Route]

    def candidate(self, requesting: str, instrument: str, data_region: str) -> Route | None:
        """The route an authority in ``requesting`` could use with ``instrument`` for data
        held in ``data_region``. Whether it covers the subject is policy's question.

        The index is by country: a subdivision uses its country's entry.
        """
        return self.index.get((requesting[:2], instrument, data_region[:2]))


def _routes(raw: dict[str, Any], j: Jurisdictions) -> Routes:
    _Reader("routes.toml", "", raw).only("route")
    entries = raw.get("route", [])
    if not isinstance(entries, list):
        raise ConfigError("routes.toml: routes are [[route]] tables")
    routes: list[Route] = []
    index: dict[tuple[str, str, str], Route] = {}
    for n, table in enumerate(entries):
        r = _Reader("routes.toml", f"route[{n}]", table)
        keys = ("id", "kind", "name", "requesting", "subjects", "excluded_subjects")
        r.only(*keys, "data_regions", "instruments")
        route = Route(
            id=_word(r, "id"),
            kind=_word(r, "kind"),
            name=r.text("name"),
            requesting=r.words("requesting", j.names),
            subjects=r.words("subjects", j.names),
            excluded_subjects=r.words("excluded_subjects", j.names),
            data_regions=r.words("data_regions", j.names),
            instruments=r.words("instruments", _INSTRUMENTS),
        )
        if any(route.id == other.id for other in routes):
            raise ConfigError(f"routes.toml: two routes named {route.id!r}")
        routes.append(route)
        for req in j.expand(route.requesting) & j.countries:
            for region in j.expand(route.data_regions) & j.countries:
                for instrument in route.instruments:
                    key = (req, instrument, region)
                    if key in index:
                        raise ConfigError(
                            f"routes.toml: {route.id} and {index[key].id} both cover a "
                            f"{instrument} from {req} for data in {region}"
                        )
                    index[key] = route
    return Routes(tuple(routes), MappingProxyType(index))


def _word(r: _Reader, key: str) -> str:
    value = r.text(key)
    if not _ID.fullmatch(value):
        raise ConfigError(f"{r.at(key)} must be a lowercase word")
    return value


@dataclass(frozen=True)
class Ladders:
    """Instrument ladders per jurisdiction or group, and the lookup order of groups."""

    order: tuple[str, ...]
    tables: Mapping[str, Mapping[str, frozenset[str]]]

    def lookup(self, lineage: Iterable[str], item: str) -> tuple[frozenset[str], str]:
        """The instruments that reach ``item`` and the table that said so."""
        for code in [*lineage, "default"]:
            table = self.tables.get(code)
            if table is not None and item in table:
                return table[item], code
        return frozenset(), "default"


def _ladders(raw: dict[str, Any], j: Jurisdictions) -> Ladders:
    top = _Reader("ladders.toml", "", raw)
    order = top.words("order", j.groups)
    tables: dict[str, Mapping[str, frozenset[str]]] = {}
    for code, table in raw.items():
        if code == "order":
            continue
        if code != "default":
            j.require(code, f"ladders.toml: [{code}]")
        t = _Reader("ladders.toml", code, table)
        t.only(*ITEMS)
        tables[code] = MappingProxyType(
            {item: frozenset(t.words(item, _INSTRUMENTS)) for item in t.table}
        )
    missing = sorted(ITEMS - set(tables.get("default", {})))
    if missing:
        raise ConfigError(f"ladders.toml: [default] must decide every item; missing {missing}")
    return Ladders(order, MappingProxyType(tables))


@dataclass(frozen=True)
class Offence:
    id: str
    description: str
    protected: bool
    emergency: bool


def _offences(raw: dict[str, Any]) -> tuple[Offence, ...]:
    out = []
    for name, table in raw.items():
        if not _ID.fullmatch(name):
            raise ConfigError(f"offences.toml: {name!r} must be a lowercase word")
        t = _Reader("offences.toml", name, table)
        t.only("description", "protected", "emergency")
        out.append(
            Offence(name, t.text("description", ""), t.flag("protected"), t.flag("emergency"))
        )
    return tuple(out)


@dataclass(frozen=True)
class Limits:
    """Caps from ``pack.toml`` ``[limits]``."""

    target_cap: int
    max_range_days: int
    time_bound_categories: frozenset[str]
    volume_window_days: int
    volume_threshold: int
    max_gag_days: int
    global_actions: frozenset[str]


@dataclass(frozen=True)
class Role:
    id: str
    description: str
    specialist: bool


def _roles(raw: dict[str, Any]) -> tuple[Role, ...]:
    out = []
    for name, table in raw.items():
        if not _ID.fullmatch(name):
            raise ConfigError(f"roles.toml: {name!r} must be a lowercase word")
        t = _Reader("roles.toml", name, table)
        t.only("description", "specialist")
        out.append(Role(name, t.text("description", ""), t.flag("specialist")))
    return tuple(out)


@dataclass(frozen=True)
class Tables:
    """Every data file of a pack."""

    name: str
    version: str
    limits: Limits
    jurisdictions: Jurisdictions
    routes: Routes
    ladders: Ladders
    offences: Mapping[str, Offence]
    roles: Mapping[str, Role]


def read_tables(directory: Path) -> Tables:
    """Read and check the TOML files of the pack in ``directory``."""
    pack = _read(directory / "pack.toml")
    top = _Reader("pack.toml", "", pack)
    top.only("pack", "limits")
    meta = _Reader("pack.toml", "pack", pack.get("pack", {}))
    meta.only("name", "version")
    lim = _Reader("pack.toml", "limits", pack.get("limits", {}))
    lim.only(
        "target_cap",
        "max_range_days",
        "time_bound_categories",
        "volume_window_days",
        "volume_threshold",
        "max_gag_days",
        "global_actions",
    )
    limits = Limits(
        target_cap=lim.number("target_cap"),
        max_range_days=lim.number("max_range_days"),
        time_bound_categories=frozenset(
            lim.words("time_bound_categories", (c.value for c in DataCategory))
        ),
        volume_window_days=lim.number("volume_window_days"),
        volume_threshold=lim.number("volume_threshold"),
        max_gag_days=lim.number("max_gag_days"),
        global_actions=frozenset(lim.words("global_actions", (a.value for a in RestrictionAction))),
    )
    j = _jurisdictions(_read(directory / "jurisdictions.toml"))
    return Tables(
        name=meta.text("name"),
        version=meta.text("version"),
        limits=limits,
        jurisdictions=j,
        routes=_routes(_read(directory / "routes.toml"), j),
        ladders=_ladders(_read(directory / "ladders.toml"), j),
        offences=MappingProxyType({o.id: o for o in _offences(_read(directory / "offences.toml"))}),
        roles=MappingProxyType({r.id: r for r in _roles(_read(directory / "roles.toml"))}),
    )
