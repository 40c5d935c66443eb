"""Who takes part: requesting authorities and the platform's staff.

An :class:`Authority` is registered before it can send demands: its jurisdiction, its
standing, the Ed25519 keys its requests are signed with (RFC 9421) and the channels staff
call back on in an emergency. :class:`Staff` are the platform's people, with roles from the
policy pack and the jurisdiction they work in (which matters: nobody located in the
requesting state approves an effect on a subject outside it).

>>> a = Authority(
...     id="gb-met",
...     name="Metropolitan Police Service",
...     kind=AuthorityKind.POLICE,
...     jurisdiction="GB",
...     channels=(Channel(ChannelKind.PHONE, "+44 20 7946 0000"),),
... )
>>> a.is_active, a.channel_registered(Channel(ChannelKind.PHONE, "+44 20 7946 0000"))
(True, True)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from custodes.errors import InputError

from .demand import check_code, check_token

__all__ = [
    "Authority",
    "AuthorityKind",
    "Channel",
    "ChannelKind",
    "Staff",
    "Standing",
    "VerificationKey",
]

_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def _check_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise InputError(f"{what} {value!r} must be 1-128 characters of [A-Za-z0-9._:-]")
    return value


class AuthorityKind(StrEnum):
    POLICE = "police"
    PROSECUTOR = "prosecutor"
    COURT = "court"
    REGULATOR = "regulator"
    INTELLIGENCE = "intelligence"
    OTHER = "other"


class Standing(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class ChannelKind(StrEnum):
    """How staff reach an authority to confirm an emergency request."""

    PHONE = "phone"
    EMAIL = "email"
    PORTAL = "portal"


@dataclass(frozen=True)
class VerificationKey:
    """An Ed25519 public key (32 raw bytes) an authority signs requests with."""

    id: str
    ed25519: bytes

    def __post_init__(self) -> None:
        _check_id(self.id, "key id")
        if not isinstance(self.ed25519, bytes) or len(self.ed25519) != 32:
            raise InputError("an Ed25519 public key is exactly 32 bytes")


@dataclass(frozen=True)
class Channel:
    """A registered call-back channel."""

    kind: ChannelKind
    address: str

    def __post_init__(self) -> None:
        if not isinstance(self.kind, ChannelKind):
            raise InputError(f"channel kind {self.kind!r} is not phone, email or portal")
        if not isinstance(self.address, str) or not 0 < len(self.address) <= 256:
            raise InputError("a channel address is 1-256 characters")


@dataclass(frozen=True)
class Authority:
    """A registered requesting authority."""

    id: str
    name: str
    kind: AuthorityKind
    jurisdiction: str
    standing: Standing = Standing.ACTIVE
    keys: tuple[VerificationKey, ...] = ()
    channels: tuple[Channel, ...] = ()

    def __post_init__(self) -> None:
        _check_id(self.id, "authority id")
        if not isinstance(self.name, str) or not 0 < len(self.name) <= 256:
            raise InputError("an authority name is 1-256 characters")
        if not isinstance(self.kind, AuthorityKind):
            raise InputError(f"authority kind {self.kind!r} is not known")
        check_code(self.jurisdiction)
        if not isinstance(self.standing, Standing):
            raise InputError(f"standing {self.standing!r} is not active or suspended")
        if len({k.id for k in self.keys}) != len(self.keys):
            raise InputError("two keys of one authority share an id")
        if len(set(self.channels)) != len(self.channels):
            raise InputError("a call-back channel is registered twice")

    @property
    def is_active(self) -> bool:
        return self.standing is Standing.ACTIVE

    @property
    def country(self) -> str:
        """The ISO 3166-1 part of the jurisdiction (``US`` for ``US-CA``)."""
        return self.jurisdiction[:2]

    def key(self, key_id: str) -> VerificationKey | None:
        """The registered key with this id, if any."""
        return next((k for k in self.keys if k.id == key_id), None)

    def channel_registered(self, channel: Channel) -> bool:
        """Whether ``channel`` is one of this authority's registered call-back channels."""
        return channel in self.channels


@dataclass(frozen=True)
class Staff:
    """A member of the platform's staff: roles from the policy pack, and where they work."""

    id: str
    roles: frozenset[str]
    location: str

    def __post_init__(self) -> None:
        _check_id(self.id, "staff id")
        for role in self.roles:
            check_token(role, "role")
        check_code(self.location, "staff location")
