"""Where the published log comes from: a directory, or an http(s) URL (c2sp.org/tlog-tiles).

Both give a :data:`~custodes.audit.logcheck.Fetch`: ``fetch("checkpoint")``,
``fetch("tile/0/000")``, ``fetch("tile/entries/001.p/44")``. A file the source does not have
raises :class:`~custodes.audit.logcheck.MissingFileError` (a finding); a source that cannot be
read at all raises :class:`~custodes.audit.errors.FetchError` (the audit stops). Over HTTP,
each response is read only up to the largest size its kind of file can have; anything longer
is refused before it is read in full.

A log read over HTTP is read the way a web server or CDN serves it best: on connections kept
open between requests (one TCP and TLS handshake per connection, not per file), and
:data:`READ_AHEAD` files at a time (:class:`~custodes.audit.logcheck.ReadsAhead`), so that a
million entries (7,813 bundles and tiles) cost a round trip per sixteen files, not per file.

Over https, the server's certificate must verify for the URL's host, against the system's CA
certificates or only those of a CA file the auditor names (:func:`tls_context`), with TLS 1.2
at least; one set of TLS settings serves every connection a source opens.

>>> open_source("ftp://example.org/log")
Traceback (most recent call last):
...
custodes.audit.errors.FetchError: not a directory or an http(s) URL: 'ftp://example.org/log'
"""

from __future__ import annotations

import http.client
import logging
import ssl
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from custodes.audit.errors import FetchError
from custodes.audit.logcheck import MAX_CHECKPOINT_SIZE, Fetch, MissingFileError, dir_fetcher
from custodes.tlog import SizeLimitError
from custodes.tlog.tiles import MAX_BUNDLE_SIZE, TILE_WIDTH

__all__ = [
    "READ_AHEAD",
    "UrlFetcher",
    "log_directory",
    "open_source",
    "opened",
    "tls_context",
    "url_fetcher",
]

log = logging.getLogger(__name__)

_TIMEOUT = 30.0
_MAX_TILE_SIZE = TILE_WIDTH * 32
READ_AHEAD = 16
"""Files a URL source has fetched at once, each on a kept-alive connection of its own:
enough to keep the audit busy across a round trip of about 50 ms, as it checks a file in
about 3 ms, and at most 16 MB of bundles held."""


def _limit(rel: str) -> int:
    if rel == "checkpoint":
        return MAX_CHECKPOINT_SIZE
    if rel.startswith("tile/entries/"):
        return MAX_BUNDLE_SIZE
    return _MAX_TILE_SIZE


_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_REDIRECTS = 5
_MAX_ERROR_BODY = 64 * 1024
_Origin = tuple[str, str]  # scheme, host[:port]


def tls_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """The TLS settings of an https source: the server's certificate verified, for the URL's
    host, against the system's CA certificates (``SSL_CERT_FILE`` and ``SSL_CERT_DIR`` name
    others), or, with ``ca_file``, against the PEM certificates in that file only; TLS 1.2 at
    least. Raises :class:`FetchError` for a file that cannot be read as CA certificates."""
    try:
        context = ssl.create_default_context(cafile=None if ca_file is None else str(ca_file))
    except ssl.SSLError as exc:
        why = exc.reason or exc.strerror or exc
        raise FetchError(f"{ca_file} is not a file of PEM CA certificates ({why})") from None
    except OSError as exc:
        raise FetchError(f"cannot read the CA file {ca_file}: {exc.strerror}") from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _is_url(source: str) -> bool:
    """Whether ``source`` is an http(s) URL (else a directory, for :func:`open_source`)."""
    return urllib.parse.urlsplit(source).scheme.lower() in ("http", "https")


def _proxy(origin: _Origin) -> str | None:
    """The proxy (``host:port``) the environment names for ``origin`` (``http_proxy``,
    ``https_proxy``, ``no_proxy``), as urllib would use it; None for a direct connection."""
    scheme, netloc = origin
    proxy = urllib.request.getproxies().get(scheme)
    if not proxy or urllib.request.proxy_bypass(netloc.rsplit("@", 1)[-1]):
        return None
    parsed = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    return parsed.netloc.rsplit("@", 1)[-1] or None


class UrlFetcher:
    """Reads published files below a URL prefix (``https://host/log/``), as a
    :data:`~custodes.audit.logcheck.Fetch`. Safe to call from several threads: connections
    are kept alive and used again, at most :attr:`read_ahead` of them kept idle per server;
    redirects are followed (http and https only, at most five); a proxy the environment
    names is used as urllib would (without proxy credentials). :meth:`close` closes the
    connections, as dropping the fetcher does.

    Built on the standard library's ``http.client``, as the auditor keeps its dependencies to
    what it must trust anyway."""

    def __init__(
        self, base: str, *, timeout: float, read_ahead: int, tls: ssl.SSLContext | None = None
    ) -> None:
        if not _is_url(base):
            raise FetchError(f"not an http(s) URL: {base!r}")
        self.prefix = base if base.endswith("/") else base + "/"
        self.read_ahead = read_ahead
        self._timeout = timeout
        self._tls = tls
        self._lock = threading.Lock()
        self._idle: dict[_Origin, list[http.client.HTTPConnection]] = {}

    def __call__(self, rel: str) -> bytes:
        url = urllib.parse.urljoin(self.prefix, rel)  # the prefix is http(s), checked above
        limit = _limit(rel)
        try:
            for _ in range(_MAX_REDIRECTS + 1):
                status, reason, location, data = self._get(url, limit)
                if status not in _REDIRECTS or not location:
                    break
                url = urllib.parse.urljoin(url, location)
                if not _is_url(url):
                    raise FetchError(f"{rel} was redirected to {url!r}, not an http(s) URL")
            else:
                raise FetchError(f"{rel} was redirected more than {_MAX_REDIRECTS} times", url=url)
        except ssl.SSLCertVerificationError as exc:
            why = f"the server's certificate does not verify: {exc.verify_message}"
            raise FetchError(f"cannot read {url}: {why}", url=url) from None
        except ssl.SSLError as exc:
            failed = exc.reason or exc.strerror or str(exc)
            raise FetchError(f"cannot read {url}: TLS failed: {failed}", url=url) from None
        except (OSError, http.client.HTTPException) as exc:
            raise FetchError(f"cannot read {url}: {exc}", url=url) from None
        if status in (404, 410):
            raise MissingFileError(f"{rel} is missing ({status} from {url})", path=rel)
        if not 200 <= status < 300:
            raise FetchError(f"{url} answered {status} {reason}", url=url)
        if len(data) > limit:
            raise SizeLimitError(f"{rel} is over {limit} bytes", path=rel)
        log.debug("fetched url=%s bytes=%d", url, len(data))
        return data

    def _get(self, url: str, limit: int) -> tuple[int, str, str | None, bytes]:
        """One GET: status, reason, Location, and the body up to ``limit`` + 1 bytes (an
        error's up to 64 KiB). A kept-alive connection the server has closed since is
        replaced once; a connection whose answer was not read to its end is closed."""
        parts = urllib.parse.urlsplit(url)
        origin = (parts.scheme.lower(), parts.netloc)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        proxy = _proxy(origin)
        if origin[0] == "http" and proxy is not None:
            target = urllib.parse.urlunsplit(parts._replace(fragment=""))  # a proxy's form
        for attempt in (1, 2):
            conn = self._checkout(origin, proxy)
            try:
                conn.request("GET", target, headers={"User-Agent": "custodes-audit"})
                response = conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionError) as exc:
                conn.close()
                if attempt == 2 or isinstance(exc, ConnectionRefusedError):
                    raise
                continue  # kept alive too long: the server hung up; once more, afresh
            except BaseException:
                conn.close()
                raise
            try:
                ok = 200 <= response.status < 300
                data = response.read(limit + 1 if ok else _MAX_ERROR_BODY)
            except BaseException:
                conn.close()
                raise
            if response.isclosed() and not response.will_close:
                self._checkin(origin, conn)
            else:
                conn.close()
            return response.status, response.reason, response.getheader("Location"), data
        raise AssertionError("unreachable")  # pragma: no cover

    def _checkout(self, origin: _Origin, proxy: str | None) -> http.client.HTTPConnection:
        """An idle connection to ``origin``, else a new one (through ``proxy``, if any)."""
        with self._lock:
            idle = self._idle.get(origin)
            if idle:
                return idle.pop()
        scheme, netloc = origin
        if scheme == "https":
            tls = self._context()
            if proxy is None:
                return http.client.HTTPSConnection(netloc, timeout=self._timeout, context=tls)
            tunnel = http.client.HTTPSConnection(proxy, timeout=self._timeout, context=tls)
            tunnel.set_tunnel(netloc)  # CONNECT through the proxy; TLS with the server itself
            return tunnel
        return http.client.HTTPConnection(proxy or netloc, timeout=self._timeout)

    def _context(self) -> ssl.SSLContext:
        """The TLS settings, made once (loading the system's CA certificates) when first
        needed: a log read over plain http, or from a redirect's target, never needs them."""
        with self._lock:
            if self._tls is None:
                self._tls = tls_context()
            return self._tls

    def _checkin(self, origin: _Origin, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            idle = self._idle.setdefault(origin, [])
            if len(idle) < max(1, self.read_ahead):
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def __del__(self) -> None:
        # A fetcher is handed around as a plain function, so whoever drops the last reference
        # to it closes its connections.
        if hasattr(self, "_idle"):
            self.close()


def url_fetcher(
    base: str,
    *,
    timeout: float = _TIMEOUT,
    read_ahead: int = READ_AHEAD,
    tls: ssl.SSLContext | None = None,
) -> UrlFetcher:
    """Read published files below the URL prefix ``base`` (e.g. ``https://host/log/``),
    ``read_ahead`` at a time when a rebuild asks for many (0: one after another), with the
    TLS settings ``tls`` (default: :func:`tls_context`, the system's CA certificates)."""
    return UrlFetcher(base, timeout=timeout, read_ahead=read_ahead, tls=tls)


def log_directory(path: Path) -> Path:
    """The published log in ``path``: ``path/log`` for a data directory, else ``path``."""
    return path / "log" if (path / "log" / "checkpoint").is_file() else path


def open_source(source: str, *, tls: ssl.SSLContext | None = None) -> Fetch:
    """A fetch function for a directory (a data directory or its ``log/``) or an http(s) URL
    (read with the TLS settings ``tls``; default: :func:`tls_context`)."""
    if _is_url(source):
        return url_fetcher(source, tls=tls)
    scheme = urllib.parse.urlsplit(source).scheme
    path = Path(source)
    if scheme and not path.exists():
        raise FetchError(f"not a directory or an http(s) URL: {source!r}")
    if not path.is_dir():
        raise FetchError(f"{source} is not a directory")
    return dir_fetcher(log_directory(path))


@contextmanager
def opened(sources: Sequence[str], *, tls: ssl.SSLContext | None = None) -> Iterator[list[Fetch]]:
    """:func:`open_source` of each of ``sources``, their connections closed on leaving: not
    left to the cycle collector, which may come to a connection's socket before the fetcher
    that would have closed it (an exception's traceback easily puts a fetcher in a cycle)."""
    fetches: list[Fetch] = []
    try:
        for source in sources:
            fetches.append(open_source(source, tls=tls))
        yield fetches
    finally:
        for fetch in fetches:
            if isinstance(fetch, UrlFetcher):
                fetch.close()
