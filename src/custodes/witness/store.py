"""A witness's directory: its key, the logs it witnesses, and its latest checkpoint of each.

::

    WDIR/
      witness.skey            the cosigning key (cosignature/v1, mode 0600, never leaves)
      witness.vkey            its verifier key, for the policies of auditors
      logs                    one log verifier key per line; the key's name is the log's
                              origin; blank lines and lines starting with # are ignored
      state/<log>.checkpoint  the latest checkpoint cosigned for that log, as received
      evidence/               requests that failed their consistency proof (possible forks)

:meth:`WitnessStore.update` runs a check and the write of the new checkpoint as one step per
log: a thread lock and an exclusive ``flock`` on ``state/<log>.lock`` (so two processes serving
one directory cannot interleave), a write to a temporary file, ``fsync`` and a rename.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from custodes.errors import ConfigError
from custodes.tlog import (
    Checkpoint,
    KeyFormatError,
    Signer,
    TlogError,
    Verifier,
    generate_cosigner_key,
    new_cosigner,
    new_verifier,
    parse_checkpoint,
)

__all__ = ["WitnessStore", "init_witness_dir"]

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _log_name(origin: str) -> str:
    digest = hashlib.sha256(origin.encode()).hexdigest()[:16]
    return f"{_UNSAFE.sub('_', origin).strip('_')[:60]}-{digest}"


def _write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def init_witness_dir(wdir: Path, name: str) -> str:
    """Create a witness directory with a fresh cosigning key; returns the witness's vkey."""
    if (wdir / "witness.skey").exists():
        raise ConfigError(f"{wdir} already holds a witness key")
    try:
        skey, vkey = generate_cosigner_key(name)
    except TlogError as exc:
        raise ConfigError(f"witness name {name!r}: {exc.detail}") from None
    wdir.mkdir(parents=True, exist_ok=True)
    for sub in ("state", "evidence"):
        (wdir / sub).mkdir(exist_ok=True)
    fd = os.open(wdir / "witness.skey", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(skey + "\n")
    (wdir / "witness.vkey").write_text(vkey + "\n", encoding="utf-8")
    (wdir / "logs").touch()
    return vkey


class WitnessStore:
    """The files of one witness directory."""

    def __init__(self, wdir: Path) -> None:
        if not (wdir / "witness.skey").is_file():
            raise ConfigError(f"{wdir} is not a witness directory (run `custodes witness init`)")
        self.wdir = wdir
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()

    @property
    def vkey(self) -> str:
        return (self.wdir / "witness.vkey").read_text(encoding="utf-8").strip()

    def cosigner(self, clock: Callable[[], float] = time.time) -> Signer:
        try:
            return new_cosigner((self.wdir / "witness.skey").read_text().strip(), clock=clock)
        except (OSError, KeyFormatError) as exc:
            raise ConfigError(f"cannot read the witness key: {exc}") from None

    def logs(self) -> dict[str, Verifier]:
        """The logs this witness witnesses: origin to verifier."""
        logs: dict[str, Verifier] = {}
        for number, line in enumerate(self._log_lines(), start=1):
            try:
                verifier = new_verifier(line)
            except TlogError as exc:
                raise ConfigError(f"{self.wdir / 'logs'} line {number}: {exc.detail}") from None
            if verifier.name in logs:
                raise ConfigError(f"{self.wdir / 'logs'}: two keys for log {verifier.name!r}")
            logs[verifier.name] = verifier
        return logs

    def _log_lines(self) -> Iterator[str]:
        for raw in (self.wdir / "logs").read_text(encoding="utf-8").splitlines():
            line = raw.strip()
            if line and not line.startswith("#"):
                yield line

    def add_log(self, vkey: str) -> str:
        """Start witnessing the log of ``vkey``; returns its origin."""
        try:
            origin = new_verifier(vkey).name
        except TlogError as exc:
            raise ConfigError(f"not a log verifier key: {exc.detail}") from None
        if origin in self.logs():
            raise ConfigError(f"the witness already witnesses {origin!r}")
        with (self.wdir / "logs").open("a", encoding="utf-8") as f:
            f.write(vkey + "\n")
        return origin

    def latest(self, origin: str) -> tuple[bytes, Checkpoint] | None:
        """The latest checkpoint cosigned for ``origin`` (the note, parsed), or None."""
        path = self.wdir / "state" / f"{_log_name(origin)}.checkpoint"
        try:
            note = path.read_bytes()
        except FileNotFoundError:
            return None
        text = note[: note.rindex(b"\n\n") + 1].decode()
        return note, parse_checkpoint(text)

    @contextmanager
    def update(self, origin: str) -> Iterator[Callable[[bytes], None]]:
        """Hold the log's lock; the yielded function stores a new latest checkpoint note."""
        with self._locks_lock:
            lock = self._locks.setdefault(origin, threading.Lock())
        name = _log_name(origin)
        with lock, (self.wdir / "state" / f"{name}.lock").open("a") as lock_file:
            fcntl.flock(lock_file, fcntl.LOCK_EX)
            try:
                yield lambda note: _write_atomic(self.wdir / "state" / f"{name}.checkpoint", note)
            finally:
                fcntl.flock(lock_file, fcntl.LOCK_UN)

    def keep_evidence(self, origin: str, body: bytes, reason: str) -> Path:
        """Keep a refused request that may prove the log misbehaved."""
        path = self.wdir / "evidence" / f"{_log_name(origin)}-{time.time_ns()}.request"
        path.write_bytes(body)
        log.warning("kept evidence origin=%s reason=%s path=%s", origin, reason, path)
        return path
