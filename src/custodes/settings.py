"""Settings: where a deployment keeps its data, and which database it uses.

A data directory holds everything one deployment of custodes owns::

    DATA/
      custodes.toml     origin of the log and other settings (written by ``custodes init``)
      keys/log.skey     the log's signed-note private key (mode 0600, never published)
      keys/log.vkey     the log's verifier key (public)
      custodes.db       the embedded SQLite database (unless CUSTODES_DATABASE_URL is set)
      log/              the published log: checkpoint, tiles and entry bundles (tlog-tiles)

``CUSTODES_DATABASE_URL`` (for example ``postgresql+psycopg://db.example/custodes``) overrides the
embedded SQLite database; every process of a deployment must then point at the same database.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from custodes.errors import ConfigError

CONFIG_FILE = "custodes.toml"
DATABASE_URL_ENV = "CUSTODES_DATABASE_URL"


@dataclass(frozen=True)
class Settings:
    """A deployment's settings, read once at start-up and passed explicitly."""

    data_dir: Path
    origin: str
    database_url: str
    checkpoint_interval: float = 0.1
    """Seconds the sequencer waits between integrations when the log is idle."""

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
    interval = raw.get("checkpoint_interval", 0.1)
    if not isinstance(interval, int | float) or not 0.001 <= interval <= 60:
        raise ConfigError(f"{config_path}: 'checkpoint_interval' must be 0.001..60 seconds")
    url = database_url or os.environ.get(DATABASE_URL_ENV) or raw.get("database_url")
    if url is not None and not isinstance(url, str):
        raise ConfigError(f"{config_path}: 'database_url' must be a string")
    return Settings(
        data_dir=data_dir,
        origin=origin,
        database_url=url or default_database_url(data_dir),
        checkpoint_interval=float(interval),
    )


def write_config(data_dir: Path, origin: str) -> None:
    """Write a fresh ``custodes.toml``; refuses to overwrite an existing one."""
    path = data_dir / CONFIG_FILE
    if path.exists():
        raise ConfigError(f"{path} already exists: this directory is already initialised")
    if not origin or any(c in origin for c in '\n"\\'):
        raise ConfigError("origin must be a non-empty single line without quotes")
    path.write_text(
        f'# custodes deployment settings\norigin = "{origin}"\ncheckpoint_interval = 0.1\n',
        encoding="utf-8",
    )
