"""Where the published log comes from: a directory, or an http(s) URL (c2sp.org/tlog-tiles).

Both give a :data:`~custodes.audit.logcheck.Fetch`: ``fetch("checkpoint")``,
``fetch("tile/0/000")``, ``fetch("tile/entries/001.p/44")``. A file the source does not have
raises :class:`~custodes.audit.logcheck.MissingFileError` (a finding); a source that cannot be
read at all raises :class:`~custodes.audit.errors.FetchError` (the audit stops). Over HTTP,
each response is read only up to the largest size its kind of file can have; anything longer
is refused before it is read in full.

>>> open_source("ftp://example.org/log")
Traceback (most recent call last):
...
custodes.audit.errors.FetchError: not a directory or an http(s) URL: 'ftp://example.org/log'
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from custodes.audit.errors import FetchError
from custodes.audit.logcheck import MAX_CHECKPOINT_SIZE, Fetch, MissingFileError, dir_fetcher
from custodes.tlog import SizeLimitError
from custodes.tlog.tiles import MAX_BUNDLE_SIZE, TILE_WIDTH

__all__ = ["log_directory", "open_source", "url_fetcher"]

log = logging.getLogger(__name__)

_TIMEOUT = 30.0
_MAX_TILE_SIZE = TILE_WIDTH * 32


def _limit(rel: str) -> int:
    if rel == "checkpoint":
        return MAX_CHECKPOINT_SIZE
    if rel.startswith("tile/entries/"):
        return MAX_BUNDLE_SIZE
    return _MAX_TILE_SIZE


def url_fetcher(base: str, *, timeout: float = _TIMEOUT) -> Fetch:
    """Read published files below the URL prefix ``base`` (e.g. ``https://host/log/``)."""
    if urllib.parse.urlsplit(base).scheme.lower() not in ("http", "https"):
        raise FetchError(f"not an http(s) URL: {base!r}")
    prefix = base if base.endswith("/") else base + "/"

    def fetch(rel: str) -> bytes:
        url = urllib.parse.urljoin(prefix, rel)  # prefix is http(s), checked above
        limit = _limit(rel)
        request = urllib.request.Request(url, headers={"User-Agent": "custodes-audit"})  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                data: bytes = response.read(limit + 1)
        except urllib.error.HTTPError as exc:
            if exc.code in (404, 410):
                raise MissingFileError(
                    f"{rel} is missing ({exc.code} from {url})", path=rel
                ) from None
            raise FetchError(f"{url} answered {exc.code} {exc.reason}", url=url) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise FetchError(f"cannot read {url}: {reason}", url=url) from None
        if len(data) > limit:
            raise SizeLimitError(f"{rel} is over {limit} bytes", path=rel)
        log.debug("fetched url=%s bytes=%d", url, len(data))
        return data

    return fetch


def log_directory(path: Path) -> Path:
    """The published log in ``path``: ``path/log`` for a data directory, else ``path``."""
    return path / "log" if (path / "log" / "checkpoint").is_file() else path


def open_source(source: str) -> Fetch:
    """A fetch function for a directory (a data directory or its ``log/``) or an http(s) URL."""
    scheme = urllib.parse.urlsplit(source).scheme.lower()
    if scheme in ("http", "https"):
        return url_fetcher(source)
    path = Path(source)
    if scheme and not path.exists():
        raise FetchError(f"not a directory or an http(s) URL: {source!r}")
    if not path.is_dir():
        raise FetchError(f"{source} is not a directory")
    return dir_fetcher(log_directory(path))
