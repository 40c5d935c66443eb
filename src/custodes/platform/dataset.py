"""The reference platform's data set: generated, realistic, deterministic from a seed.

A video-meeting platform with accounts in 45 countries (sub-national codes for the US,
Canada, the UK, Germany, China and Australia), data held in four regions (US, IE, SG, and
the EU's users in IE), meetings whose hosts and participants cross borders, IP and session
logs, payments, recordings, chat transcripts and files, and evidence the platform's own
trust-and-safety team captured. On top come the well-known subjects of
:mod:`custodes.platform.fixtures` and a block of accounts from one Chinese province (23,000
by default).

IP addresses come from the shared address space 100.64.0.0/10 (RFC 6598) and the IPv6
documentation prefix 2001:db8::/32 (RFC 3849); e-mail domains are the reserved example.com,
example.org and example.net (RFC 2606). Nothing in it is a real person.

The same seed and sizes give the same rows in the same order (and so the same database
dump); no wall clock is read: times count back from ``epoch``.
"""

from __future__ import annotations

import hashlib
import random
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from custodes.errors import ConfigError

from .fixtures import FIXTURES

__all__ = ["EPOCH", "SCHEMA", "DatasetSummary", "build_reference_platform", "stamp"]

EPOCH = datetime(2020, 6, 4, 12, tzinfo=UTC)
"""Default "now" of the data set: the 31st anniversary of 4 June 1989."""

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE accounts (
  id TEXT PRIMARY KEY, name TEXT NOT NULL, email TEXT NOT NULL, jurisdiction TEXT NOT NULL,
  data_region TEXT NOT NULL, account_type TEXT NOT NULL, created_at TEXT NOT NULL,
  status TEXT NOT NULL DEFAULT 'active');
CREATE TABLE sessions (
  account_id TEXT NOT NULL, started_at TEXT NOT NULL, ended_at TEXT NOT NULL, ip TEXT NOT NULL,
  country TEXT NOT NULL, user_agent TEXT NOT NULL);
CREATE INDEX sessions_account ON sessions (account_id, started_at);
CREATE TABLE payments (
  account_id TEXT NOT NULL, paid_at TEXT NOT NULL, amount_cents INTEGER NOT NULL,
  currency TEXT NOT NULL, card_last4 TEXT NOT NULL);
CREATE INDEX payments_account ON payments (account_id, paid_at);
CREATE TABLE meetings (
  id TEXT PRIMARY KEY, host_id TEXT NOT NULL, topic TEXT NOT NULL, scheduled_at TEXT NOT NULL,
  duration_minutes INTEGER NOT NULL, status TEXT NOT NULL DEFAULT 'scheduled');
CREATE INDEX meetings_host ON meetings (host_id);
CREATE TABLE participants (
  meeting_id TEXT NOT NULL, account_id TEXT, display_name TEXT NOT NULL,
  jurisdiction TEXT NOT NULL, joined_at TEXT NOT NULL, left_at TEXT NOT NULL, ip TEXT NOT NULL);
CREATE INDEX participants_meeting ON participants (meeting_id);
CREATE TABLE content (
  id TEXT PRIMARY KEY, owner_id TEXT NOT NULL, meeting_id TEXT, kind TEXT NOT NULL,
  title TEXT NOT NULL, created_at TEXT NOT NULL, size_bytes INTEGER NOT NULL,
  sha256 TEXT NOT NULL, status TEXT NOT NULL DEFAULT 'visible',
  restricted_in TEXT NOT NULL DEFAULT '');
CREATE INDEX content_owner ON content (owner_id);
CREATE TABLE evidence (
  id TEXT PRIMARY KEY, target_kind TEXT NOT NULL, target_id TEXT NOT NULL, kind TEXT NOT NULL,
  sha256 TEXT NOT NULL, captured_at TEXT NOT NULL, description TEXT NOT NULL);
CREATE TABLE restrictions (
  id TEXT PRIMARY KEY, target_kind TEXT NOT NULL, target_id TEXT NOT NULL,
  action TEXT NOT NULL, territories TEXT NOT NULL, applied_at TEXT NOT NULL, until TEXT,
  lifted_at TEXT, reference TEXT NOT NULL);
CREATE TABLE holds (
  id TEXT PRIMARY KEY, target_kind TEXT NOT NULL, target_id TEXT NOT NULL,
  categories TEXT NOT NULL, placed_at TEXT NOT NULL, until TEXT NOT NULL, released_at TEXT,
  reference TEXT NOT NULL);
CREATE TABLE notices (
  id TEXT PRIMARY KEY, account_id TEXT NOT NULL, target_kind TEXT NOT NULL,
  target_id TEXT NOT NULL, reference TEXT NOT NULL, sent_at TEXT NOT NULL, body TEXT NOT NULL);
"""

# code, weight, data region, subdivisions, names
_COUNTRIES: tuple[tuple[str, int, str, tuple[str, ...], str], ...] = (
    ("US", 24, "US", ("US-CA", "US-NY", "US-TX", "US-FL", "US-WA", "US-IL", "US-MA"), "en"),
    ("CA", 3, "US", ("CA-ON", "CA-QC", "CA-BC", "CA-AB"), "en"),
    ("MX", 3, "US", (), "es"), ("BR", 4, "US", (), "pt"), ("AR", 1, "US", (), "es"),
    ("CO", 1, "US", (), "es"), ("CL", 1, "US", (), "es"),
    ("GB", 5, "US", ("GB-ENG", "GB-SCT", "GB-WLS", "GB-NIR"), "en"),
    ("IE", 1, "IE", (), "en"), ("DE", 4, "IE", ("DE-BE", "DE-BY", "DE-NW", "DE-HH"), "de"),
    ("FR", 3, "IE", (), "fr"), ("ES", 2, "IE", (), "es"), ("IT", 2, "IE", (), "it"),
    ("NL", 1, "IE", (), "nl"), ("PL", 1, "IE", (), "pl"), ("SE", 1, "IE", (), "sv"),
    ("AT", 1, "IE", (), "de"), ("BE", 1, "IE", (), "nl"), ("DK", 1, "IE", (), "sv"),
    ("NO", 1, "IE", (), "sv"), ("CH", 1, "IE", (), "de"), ("UA", 1, "IE", (), "ru"),
    ("RU", 2, "IE", (), "ru"), ("TR", 1, "IE", (), "tr"), ("IL", 1, "US", (), "he"),
    ("AE", 1, "US", (), "ar"), ("SA", 1, "US", (), "ar"), ("EG", 1, "US", (), "ar"),
    ("NG", 1, "US", (), "en"), ("KE", 1, "US", (), "en"), ("ZA", 1, "US", (), "en"),
    ("IN", 5, "SG", (), "hi"), ("JP", 3, "SG", (), "ja"), ("KR", 2, "SG", (), "ko"),
    ("CN", 3, "SG", ("CN-BJ", "CN-SH", "CN-GD", "CN-ZJ", "CN-SC"), "zh"),
    ("HK", 1, "SG", (), "zh"), ("TW", 1, "SG", (), "zh"), ("SG", 1, "SG", (), "en"),
    ("AU", 2, "SG", ("AU-NSW", "AU-VIC", "AU-QLD"), "en"), ("NZ", 1, "SG", (), "en"),
    ("PH", 2, "SG", (), "en"), ("ID", 2, "SG", (), "id"), ("VN", 1, "SG", (), "vi"),
    ("TH", 1, "SG", (), "th"), ("MY", 1, "SG", (), "id"),
)  # fmt: skip
_BY_CODE = {c[0]: c for c in _COUNTRIES}
_INDEX = {c[0]: i for i, c in enumerate(_COUNTRIES)}

_NAMES: dict[str, tuple[str, str]] = {
    "en": (
        "James Mary Robert Linda Michael Sarah David Karen Grace Daniel",
        "Smith Johnson Brown Taylor Wilson Evans Walker Wright Hughes Clarke",
    ),
    "es": (
        "Lucía Mateo Sofía Santiago Valentina Diego Camila Javier",
        "García Rodríguez Martínez López Hernández Pérez Sánchez Romero",
    ),
    "pt": (
        "Ana João Maria Pedro Beatriz Lucas Mariana Rafael",
        "Silva Santos Oliveira Souza Costa Pereira Almeida Ferreira",
    ),
    "de": (
        "Anna Lukas Lea Jonas Hannah Felix Mia Paul",
        "Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker",
    ),
    "fr": (
        "Camille Louis Chloé Hugo Léa Jules Manon Arthur",
        "Martin Bernard Dubois Thomas Robert Richard Petit Durand",
    ),
    "it": (
        "Giulia Francesco Sofia Alessandro Aurora Lorenzo Martina Matteo",
        "Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci",
    ),
    "nl": (
        "Emma Daan Julia Sem Tess Lucas Sanne Bram",
        "de Jong Jansen de Vries van Dijk Bakker Visser Smit Mulder",
    ),
    "pl": (
        "Zuzanna Jakub Julia Antoni Maja Jan Zofia Szymon",
        "Nowak Kowalski Wiśniewski Wójcik Kowalczyk Kamiński Lewandowski Zieliński",
    ),
    "sv": (
        "Alice Oscar Maja William Elsa Liam Astrid Noah",
        "Andersson Johansson Karlsson Nilsson Eriksson Larsson Olsen Hansen",
    ),
    "ru": (
        "Anastasia Ivan Maria Dmitry Olga Sergei Elena Andriy",
        "Ivanov Smirnov Kuznetsov Popov Shevchenko Kovalenko Sokolov Petrenko",
    ),
    "tr": (
        "Zeynep Yusuf Elif Mehmet Ayşe Mustafa Defne Emir",
        "Yılmaz Kaya Demir Şahin Çelik Yıldız Aydın Öztürk",
    ),
    "he": (
        "Noa David Tamar Ariel Maya Yosef Shira Eitan",
        "Cohen Levi Mizrahi Peretz Biton Friedman Katz Azoulay",
    ),
    "ar": (
        "Fatima Mohammed Aisha Omar Layla Ahmed Mariam Youssef",
        "Hassan Ali Ibrahim Mahmoud Khalil Saleh Nasser Haddad",
    ),
    "hi": (
        "Aarav Ananya Vivaan Diya Arjun Isha Rohan Priya",
        "Sharma Patel Singh Kumar Gupta Reddy Iyer Das",
    ),
    "ja": (
        "Yui Haruto Aoi Sota Hina Ren Sakura Yuto",
        "Sato Suzuki Takahashi Tanaka Watanabe Ito Yamamoto Nakamura",
    ),
    "ko": (
        "Seo-yeon Min-jun Ji-woo Seo-jun Ha-eun Do-yun Ji-min Eun-woo",
        "Kim Lee Park Choi Jung Kang Cho Yoon",
    ),
    "zh": (
        "Wei Fang Jing Lei Min Tao Yan Jun Li Hui",
        "Wang Li Zhang Liu Chen Yang Huang Zhao Wu Zhou",
    ),
    "id": (
        "Putri Budi Siti Agus Dewi Rizky Ayu Fajar",
        "Santoso Wijaya Saputra Hidayat Lestari Kurniawan Pratama Susanto",
    ),
    "vi": (
        "Linh Minh Trang Huy Anh Duc Mai Nam",
        "Nguyen Tran Le Pham Hoang Phan Vu Dang",
    ),
    "th": (
        "Ploy Somchai Nok Anan Malee Chai Pim Krit",
        "Saetang Srisuk Chaiyaporn Wongsa Boonmee Thongchai Kaewkla Sukjai",
    ),
}
_TYPES = ("free", "pro", "business", "education")
_TYPE_WEIGHTS = (70, 15, 10, 5)
_AGENTS = ("client/5.0 (Windows 10)", "client/5.0 (macOS 10.15)", "web/Chrome 83",
           "web/Firefox 77", "ios/5.0 (iPhone)", "android/5.0")  # fmt: skip
_TOPICS = ("Weekly team sync", "Sprint planning", "Parent-teacher meeting", "Book club",
           "Family call", "Quarterly review", "Yoga class", "Design critique", "Office hours",
           "Community meeting")  # fmt: skip


def stamp(t: datetime) -> str:
    """How the data set writes a time: UTC, whole seconds, ``Z`` (sorts as text)."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class DatasetSummary:
    """What :func:`build_reference_platform` wrote."""

    path: Path
    seed: int
    epoch: datetime
    counts: dict[str, int]


@dataclass
class _Account:
    id: str
    name: str
    country: str
    jurisdiction: str
    region: str
    type: str


class _Generator:
    """Produces every row, in a fixed order, from one seeded random source."""

    def __init__(self, seed: int, epoch: datetime) -> None:
        self.rng = random.Random(seed)
        self.epoch = epoch
        self.rows: dict[str, list[tuple[object, ...]]] = {}
        self.accounts: list[_Account] = []
        self.by_country: dict[str, list[_Account]] = {}
        self._weights = [c[1] for c in _COUNTRIES]
        self._emails: set[str] = set()

    def add(self, table: str, *row: object) -> None:
        self.rows.setdefault(table, []).append(row)

    def ago(self, low: float, high: float) -> datetime:
        """A time between ``high`` and ``low`` days before the epoch, whole seconds."""
        return self.epoch - timedelta(seconds=int(self.rng.uniform(low, high) * 86400))

    def ip(self, country: str) -> str:
        k = _INDEX[country]
        if self.rng.random() < 0.15:
            net, host = self.rng.randrange(1 << 16), self.rng.randrange(1, 1 << 16)
            return f"2001:db8:{k:x}:{net:x}::{host:x}"
        return f"100.{64 + k}.{self.rng.randrange(256)}.{self.rng.randrange(1, 255)}"

    def person(self, names: str) -> tuple[str, str]:
        firsts, lasts = _NAMES[names]
        name = f"{self.rng.choice(firsts.split())} {self.rng.choice(lasts.split())}"
        base = "".join(ch for ch in name.lower().replace(" ", ".") if ch.isascii()) or "user"
        domain = self.rng.choice(("example.com", "example.org", "example.net"))
        email = f"{base}@{domain}"
        while email in self._emails:
            email = f"{base}{self.rng.randrange(10, 10_000)}@{domain}"
        self._emails.add(email)
        return name, email

    def account(self, ident: str, country: str, *, jurisdiction: str | None = None,
                kind: str | None = None, sessions: int | None = None) -> _Account:  # fmt: skip
        code, _, region, subs, names = _BY_CODE[country]
        place = jurisdiction or (self.rng.choice(subs) if subs else code)
        name, email = self.person(names)
        kind = kind or self.rng.choices(_TYPES, _TYPE_WEIGHTS)[0]
        acct = _Account(ident, name, code, place, region, kind)
        created = stamp(self.ago(30, 2000))
        self.add("accounts", ident, name, email, place, region, acct.type, created, "active")
        for _ in range(self.rng.randint(0, 5) if sessions is None else sessions):
            self.session(acct)
        if acct.type != "free":
            for month in range(3):
                paid = stamp(self.epoch - timedelta(days=30 * month + self.rng.randint(1, 28)))
                amount = {"pro": 1499, "business": 1999, "education": 999}[acct.type]
                last4 = f"{self.rng.randrange(10_000):04d}"
                self.add("payments", ident, paid, amount, "USD", last4)
        self.accounts.append(acct)
        self.by_country.setdefault(code, []).append(acct)
        return acct

    def session(self, acct: _Account, *, within_days: float = 120) -> None:
        start = self.ago(0.01, within_days)
        end = start + timedelta(minutes=self.rng.randint(5, 300))
        travel = self.rng.random() < 0.1
        where = self.rng.choice(_COUNTRIES)[0] if travel else acct.country
        agent = self.rng.choice(_AGENTS)
        self.add("sessions", acct.id, stamp(start), stamp(end), self.ip(where), where, agent)

    def random_accounts(self, n: int) -> None:
        countries = self.rng.choices([c[0] for c in _COUNTRIES], self._weights, k=n)
        for i, country in enumerate(countries):
            self.account(f"u-{self.rng.getrandbits(40):010x}{i % 10}", country)

    def meeting(self, ident: str, host: _Account, topic: str, when: datetime,
                guests: Sequence[tuple[_Account | None, str]]) -> None:  # fmt: skip
        minutes = self.rng.choice((30, 45, 60, 90, 120))
        self.add("meetings", ident, host.id, topic, stamp(when), minutes, "scheduled")
        for acct, country in guests:
            joined = when + timedelta(minutes=self.rng.randint(0, 10))
            left = joined + timedelta(minutes=self.rng.randint(10, minutes))
            place = acct.jurisdiction if acct else country
            name = self.person(_BY_CODE[country][4])[0] if acct is None else acct.name
            self.add("participants", ident, acct.id if acct else None, name, place,
                     stamp(joined), stamp(left), self.ip(country))  # fmt: skip

    def content(self, ident: str, owner: str, kind: str, title: str, created: datetime, *,
                meeting: str | None = None) -> None:  # fmt: skip
        body = f"{ident}:{title}:{self.rng.getrandbits(64)}".encode()
        size = self.rng.randint(10_000, 500_000_000)
        digest = hashlib.sha256(body).hexdigest()
        self.add("content", ident, owner, meeting, kind, title, stamp(created), size, digest,
                 "visible", "")  # fmt: skip

    def random_meetings(self, n: int) -> None:
        hosts = [a for a in self.accounts if a.type != "free"] or self.accounts
        for i in range(n):
            host = self.rng.choice(hosts)
            when = self.ago(0, 90)
            local = self.by_country[host.country]
            guests: list[tuple[_Account | None, str]] = []
            for _ in range(self.rng.randint(2, 12)):
                roll = self.rng.random()
                if roll < 0.6:
                    acct = self.rng.choice(local)
                elif roll < 0.85:
                    acct = self.rng.choice(self.accounts)
                else:
                    guests.append((None, self.rng.choice(_COUNTRIES)[0]))
                    continue
                guests.append((acct, acct.country))
            ident = f"m-{self.rng.getrandbits(40):010x}{i % 10}"
            self.meeting(ident, host, self.rng.choice(_TOPICS), when, guests)
            if self.rng.random() < 0.3:
                self.content(
                    f"c-{ident[2:]}", host.id, "recording", "Recording", when, meeting=ident
                )

    def random_content(self, n: int) -> None:
        for i in range(n):
            owner = self.rng.choice(self.accounts)
            kind = self.rng.choice(("file", "chat_transcript", "whiteboard"))
            ident = f"c-{self.rng.getrandbits(40):010x}{i % 10}"
            self.content(ident, owner.id, kind, f"{kind.replace('_', ' ')} {i}", self.ago(0, 180))


def _fixtures(g: _Generator) -> None:
    f = FIXTURES
    hosts = [g.account(t.id, "US", jurisdiction=s, kind="business", sessions=4)
             for t, s in zip(f.tiananmen_hosts, f.tiananmen_host_states, strict=True)]  # fmt: skip
    people = {c: [g.account(f"u-tam-{c.lower()}-{i}", c, sessions=3) for i in range(1, 4)]
              for c in f.tiananmen_participant_countries}  # fmt: skip
    for n, (meeting, host) in enumerate(zip(f.tiananmen_meetings, hosts, strict=True)):
        when = g.epoch - timedelta(days=4 - n, hours=g.rng.randint(0, 6))
        guests: list[tuple[_Account | None, str]] = [
            (p, p.country) for c in f.tiananmen_participant_countries for p in people[c]
        ]
        guests += [(None, "CN"), (None, "HK")]
        g.meeting(meeting.id, host, "June 4th commemoration", when, guests)
    user = g.account(f.us_content_user.id, "US", jurisdiction="US-CA", kind="pro", sessions=6)
    for n, item in enumerate(f.us_content_items):
        g.content(item.id, user.id, ("recording", "file", "chat_transcript")[n],
                  f"Invoice batch {n + 1}", g.ago(10, 60))  # fmt: skip
    g.account(f.de_subscriber.id, "DE", jurisdiction="DE-BE", kind="pro", sessions=4)
    g.account(f.uk_subject.id, "GB", jurisdiction="GB-ENG", kind="pro", sessions=4)
    g.account(f.us_person.id, "US", jurisdiction="US-NY", kind="free", sessions=2)
    threat = g.account(f.emergency_subject.id, "US", jurisdiction="US-CA", kind="free", sessions=0)
    for _ in range(5):
        g.session(threat, within_days=2)
    spam = g.account(f.spam_account.id, "US", jurisdiction="US-TX", kind="free", sessions=8)
    snapshot = hashlib.sha256(f"{spam.id}: 4,200 unsolicited invitations".encode()).hexdigest()
    g.add("evidence", f.spam_evidence, "account", spam.id, "moderation_snapshot", snapshot,
          stamp(g.ago(3, 5)), "automated spam detection, reviewed by trust and safety")  # fmt: skip


def _region(g: _Generator, n: int) -> Iterator[tuple[object, ...]]:
    """The block of accounts from one province: few fields vary, so it is generated fast."""
    f = FIXTURES
    firsts, lasts = (s.split() for s in _NAMES["zh"])
    for i in range(n):
        ident = f.region_account(i).id
        name = f"{firsts[i % len(firsts)]} {lasts[(i // len(firsts)) % len(lasts)]}"
        email = f"gd{i:05d}@example.net"
        created = stamp(g.epoch - timedelta(days=30 + (i * 7919) % 2000))
        yield (ident, name, email, f.region, "SG", "free", created, "active")


def build_reference_platform(
    path: Path | str,
    *,
    seed: int = 2020,
    accounts: int = 3000,
    region_accounts: int = 23_000,
    epoch: datetime = EPOCH,
    overwrite: bool = False,
) -> DatasetSummary:
    """Generate the reference platform's SQLite database at ``path``.

    ``accounts`` random accounts (with meetings, content, sessions, payments), the fixtures,
    and ``region_accounts`` accounts from one Chinese province. Refuses to replace an
    existing file unless ``overwrite``.
    """
    path = Path(path)
    if path.exists():
        if not overwrite:
            raise ConfigError(f"{path} exists; pass overwrite=True to rebuild it")
        path.unlink()
    g = _Generator(seed, epoch)
    _fixtures(g)
    g.random_accounts(accounts)
    g.random_meetings(max(1, accounts // 4))
    g.random_content(max(1, accounts // 3))
    counts = {table: len(rows) for table, rows in g.rows.items()}
    counts["accounts"] += region_accounts
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA journal_mode = OFF")
        db.executescript(SCHEMA)
        meta = {"seed": seed, "accounts": accounts, "region_accounts": region_accounts,
                "epoch": stamp(epoch), "schema": 1}  # fmt: skip
        db.executemany("INSERT INTO meta VALUES (?, ?)", [(k, str(v)) for k, v in meta.items()])
        for table, rows in g.rows.items():
            marks = ", ".join("?" * len(rows[0]))
            db.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
        db.executemany(
            "INSERT INTO accounts VALUES (?, ?, ?, ?, ?, ?, ?, ?)", _region(g, region_accounts)
        )
    db.close()
    return DatasetSummary(path, seed, epoch, counts)
