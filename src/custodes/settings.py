"""Settings: where a deployment keeps its data, and which database it uses.

A data directory holds everything one deployment of custodes owns::

    DATA/
      custodes.toml     origin of the log and other settings (written by ``custodes init``)
      keys/log.skey     the log's signed-note private key (mode 0600, never published)
      keys/log.vkey     the log's verifier key (public)
      custodes.db       the embedded SQLite database (unless CUSTODES_DATABASE_URL is set)
      log/              the published log: checkpoint, tiles and entry bundles (tlog-tiles)

Witnesses (c2sp.org/tlog-witness) that must cosign each checkpoint before it is published are
listed in ``custodes.toml``, with how many of them must cosign (default: all)::

    witness_quorum = 1
    [[witnesses]]
    vkey = "witness.example.org+a1b2c3d4+BE..."   # cosignature/v1 verifier key
    url = "https://witness.example.org/"          # submission prefix

``CUSTODES_DATABASE_URL`` (for example ``postgresql+psycopg://db.example/custodes``) overrides the
embedded SQLite database; every process of a deployment must then point at the same database.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from custodes.errors import ConfigError
from custodes.tlog import TlogError, new_cosignature_verifier

CONFIG_FILE = "custodes.toml"
DATABASE_URL_ENV = "CUSTODES_DATABASE_URL"
CHECKPOINT_INTERVAL = 0.25
"""Seconds, by default, between the sequencer's integrations
(:attr:`Settings.checkpoint_interval`)."""


@dataclass(frozen=True)
class WitnessSetting:
    """A witness the log submits its checkpoints to: its verifier key and submission URL."""

    vkey: str
    url: str


@dataclass(frozen=True)
class Settings:
    """A deployment's settings, read once at start-up and passed explicitly."""

    data_dir: Path
    origin: str
    database_url: str
    checkpoint_interval: float = CHECKPOINT_INTERVAL
    """Seconds the sequencer waits between integrations when the log is idle; while entries
    keep coming it signs at most one checkpoint per interval."""
    witnesses: tuple[WitnessSetting, ...] = ()
    witness_quorum: int = 0
    """How many of ``witnesses`` must cosign a checkpoint before it is published."""

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "log"

    @property
    def skey_path(self) -> Path:
        return self.data_dir / "keys" / "log.skey"

    @property
    def vkey_path(self) -> Path:
        return self.data_dir / "keys" / "log.vkey"

    @property
    def lock_path(self) -> Path:
        return self.data_dir / "sequencer.lock"


def default_database_url(data_dir: Path) -> str:
    return f"sqlite:///{(data_dir / 'custodes.db').resolve()}"


def load_settings(data_dir: Path, database_url: str | None = None) -> Settings:
    """Read ``DATA/custodes.toml``; the database URL comes from the argument, the environment,
    the file, or defaults to SQLite inside the data directory, in that order."""
    config_path = data_dir / CONFIG_FILE
    if not config_path.is_file():
        raise ConfigError(f"{data_dir} is not a custodes data directory (run `custodes init`)")
    try:
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{config_path}: {exc}") from exc
    origin = raw.get("origin")
    if not isinstance(origin, str) or not origin:
        raise ConfigError(f"{config_path}: 'origin' must be a non-empty string")
    interval = raw.get("checkpoint_interval", CHECKPOINT_INTERVAL)
    if not isinstance(interval, int | float) or not 0.001 <= interval <= 60:
        raise ConfigError(f"{config_path}: 'checkpoint_interval' must be 0.001..60 seconds")
    url = database_url or os.environ.get(DATABASE_URL_ENV) or raw.get("database_url")
    if url is not None and not isinstance(url, str):
        raise ConfigError(f"{config_path}: 'database_url' must be a string")
    witnesses = _witnesses(raw.get("witnesses", []), config_path)
    quorum = raw.get("witness_quorum", len(witnesses))
    if not isinstance(quorum, int) or not 0 <= quorum <= len(witnesses):
        raise ConfigError(f"{config_path}: 'witness_quorum' must be 0..{len(witnesses)}")
    return Settings(
        data_dir=data_dir,
        origin=origin,
        database_url=url or default_database_url(data_dir),
        checkpoint_interval=float(interval),
        witnesses=witnesses,
        witness_quorum=quorum,
    )


def _witnesses(raw: object, config_path: Path) -> tuple[WitnessSetting, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"{config_path}: 'witnesses' must be a list of tables")
    witnesses = []
    for i, item in enumerate(raw):
        vkey, url = (item.get("vkey"), item.get("url")) if isinstance(item, dict) else (None, None)
        if not isinstance(vkey, str) or not isinstance(url, str):
            raise ConfigError(f"{config_path}: witnesses[{i}] needs a vkey and a url")
        try:
            new_cosignature_verifier(vkey)
        except TlogError as exc:
            raise ConfigError(f"{config_path}: witnesses[{i}].vkey: {exc.detail}") from None
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"{config_path}: witnesses[{i}].url must be http(s)")
        witnesses.append(WitnessSetting(vkey, url))
    return tuple(witnesses)


def write_config(data_dir: Path, origin: str) -> None:
    """Write a fresh ``custodes.toml``; refuses to overwrite an existing one."""
    path = data_dir / CONFIG_FILE
    if path.exists():
        raise ConfigError(f"{path} already exists: this directory is already initialised")
    if not origin or any(c in origin for c in '\n"\\'):
        raise ConfigError("origin must be a non-empty single line without quotes")
    path.write_text(
        f'# custodes deployment settings\norigin = "{origin}"\n'
        f"checkpoint_interval = {CHECKPOINT_INTERVAL}\n",
        encoding="utf-8",
    )
