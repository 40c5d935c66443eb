"""Well-known subjects of the reference platform, used by the tests and the demo.

They stand for the people of the 2020 incidents and of the lawful demands custodes must let
through. The ids are fixed; everything else about them is generated with the rest of the
data set.
"""

from __future__ import annotations

from dataclasses import dataclass

from custodes.model import Target, TargetKind

__all__ = ["FIXTURES", "Fixtures"]


@dataclass(frozen=True)
class Fixtures:
    """The fixed ids of the reference platform's well-known subjects."""

    tiananmen_meetings: tuple[Target, ...]
    """Four US-hosted commemorations of 4 June 1989, with participants in several countries."""
    tiananmen_hosts: tuple[Target, ...]
    """Their US hosts, one per meeting."""
    tiananmen_host_states: tuple[str, ...]
    tiananmen_participant_countries: tuple[str, ...]
    region: str
    """The sub-national region of the large block of accounts (a Chinese province)."""
    region_prefix: str
    """Region accounts are ``<prefix><5 digits>``, numbered from 0."""
    us_content_user: Target
    """A US user with content (recordings, files): the search warrant's target."""
    us_content_items: tuple[Target, ...]
    de_subscriber: Target
    """A subscriber in Berlin whose data is held in Ireland: the EPOC's target."""
    uk_subject: Target
    """A user in England whose data is held in the US: the CLOUD Act agreement's target."""
    us_person: Target
    """A user in New York: a UK order may not target them."""
    emergency_subject: Target
    """A user in California under threat to life, with recent sessions."""
    spam_account: Target
    """A US account the platform itself caught spamming (platform-held evidence)."""
    spam_evidence: str
    """The platform's own evidence item about ``spam_account``."""

    def region_account(self, n: int) -> Target:
        return Target(TargetKind.ACCOUNT, f"{self.region_prefix}{n:05d}")


def _acct(ident: str) -> Target:
    return Target(TargetKind.ACCOUNT, ident)


FIXTURES = Fixtures(
    tiananmen_meetings=tuple(Target(TargetKind.MEETING, f"m-tam-{i}") for i in range(1, 5)),
    tiananmen_hosts=tuple(_acct(f"u-tam-host-{i}") for i in range(1, 5)),
    tiananmen_host_states=("US-NY", "US-CA", "US-MA", "US-VA"),
    tiananmen_participant_countries=("US", "HK", "CN", "TW", "CA", "GB", "AU"),
    region="CN-GD",
    region_prefix="u-gd-",
    us_content_user=_acct("u-us-content"),
    us_content_items=tuple(Target(TargetKind.CONTENT, f"c-us-{i}") for i in range(1, 4)),
    de_subscriber=_acct("u-de-subscriber"),
    uk_subject=_acct("u-gb-subject"),
    us_person=_acct("u-us-person"),
    emergency_subject=_acct("u-us-threat"),
    spam_account=_acct("u-us-spam"),
    spam_evidence="ev-spam-1",
)
