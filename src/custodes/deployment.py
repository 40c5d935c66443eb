"""One deployment, opened from its data directory: the store, the log and its sequencer.

``custodes serve``, ``custodes demo`` and the tests open a deployment, start its sequencer
thread, and stop it when they are done::

    with open_deployment(load_settings(data_dir)) as dep:
        [index] = dep.ledger.append([b"entry"])
        dep.sequencer.integrate()
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from types import TracebackType

from custodes.errors import ConfigError
from custodes.ledger import Ledger
from custodes.ledger.lock import leader_lock
from custodes.ledger.publish import Publisher
from custodes.ledger.sequencer import Sequencer
from custodes.ledger.witnessing import WitnessEndpoint, Witnessing
from custodes.settings import Settings, write_config
from custodes.store import Store, open_store
from custodes.tlog import KeyFormatError, generate_key, new_signer, new_verifier

log = logging.getLogger(__name__)


class Deployment:
    """Everything one process needs to run a deployment; pass its parts explicitly."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self.ledger = Ledger(store)
        try:
            signer = new_signer(settings.skey_path.read_text(encoding="utf-8").strip())
        except OSError as exc:
            raise ConfigError(f"cannot read the log signing key: {exc}") from exc
        except KeyFormatError as exc:
            raise ConfigError(f"{settings.skey_path}: {exc}") from exc
        self.vkey = settings.vkey_path.read_text(encoding="utf-8").strip()
        self.verifier = new_verifier(self.vkey)
        self.witnessing = (
            Witnessing(
                [WitnessEndpoint(w.vkey, w.url) for w in settings.witnesses],
                settings.witness_quorum,
            )
            if settings.witnesses
            else None
        )
        self.sequencer = Sequencer(
            store,
            signer,
            settings.origin,
            Publisher(settings.log_dir),
            leader_lock(store.engine, settings.lock_path),
            cosign=self.witnessing,
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Run the sequencer in a background thread (leader or standing by)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(
                target=self.sequencer.run,
                args=(self._stop, self.settings.checkpoint_interval),
                name="custodes-sequencer",
                daemon=True,
            )
            self._thread.start()
            self.store.writer.on_commit.append(self.sequencer.poke)

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self.sequencer.poke()
            self._thread.join(timeout=30)
            self._thread = None

    def close(self) -> None:
        self.stop()
        self.sequencer.lock.release()
        if self.witnessing is not None:
            self.witnessing.close()
        self.store.close()

    def __enter__(self) -> Deployment:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def open_deployment(settings: Settings) -> Deployment:
    return Deployment(settings, open_store(settings.database_url))


def init_data_dir(data_dir: Path, origin: str) -> None:
    """Create a data directory: settings, a fresh log key pair, the published log folder.
    Refuses a directory that is already initialised."""
    data_dir.mkdir(parents=True, exist_ok=True)
    write_config(data_dir, origin)
    keys = data_dir / "keys"
    keys.mkdir(mode=0o700, exist_ok=True)
    skey, vkey = generate_key(origin)
    fd = os.open(keys / "log.skey", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(skey + "\n")
    (keys / "log.vkey").write_text(vkey + "\n", encoding="utf-8")
    (data_dir / "log").mkdir(exist_ok=True)
