"""Rebuild a published log from its entry bundles and check it against its checkpoint.

:func:`rebuild_log` reads every entry bundle a checkpoint commits to, hashes every entry
(RFC 9162 leaf hashes), rebuilds every hash tile at every level, compares each one byte for
byte with the published tile and computes the root. When something differs it works out
*what* differs, so that the finding names the right thing:

- the entries lead to the checkpoint's root: the entries are right, and every published tile
  that differs is corrupt (``tile_mismatch``);
- otherwise, the published tiles lead to the root: the tiles are right, and the entries that
  do not match their leaf hash are named (``entry_mismatch``), or the bundle that cannot be
  read as its width of entries, with the first entry from which it stops matching
  (``bundle_malformed``: an entry dropped, inserted, cut short);
- otherwise neither does (``root_mismatch``).

A file the checkpoint needs and the source does not have is ``file_missing``. The tree that
led to the root (rebuilt or published) is returned as a node reader, for consistency proofs.

:func:`verify_log` is the strict form used by ``custodes log verify``: it raises
:class:`LogVerificationError` on the first finding. Files are read through a :data:`Fetch`
function, so the same code checks a directory or a URL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from custodes.audit.findings import MAX_NAMED, Finding
from custodes.tlog import (
    Checkpoint,
    NodeReader,
    TlogError,
    Verifier,
    leaf_hashes,
    open_note,
    parse_checkpoint,
    root_of,
    tree_root,
)
from custodes.tlog.tiles import (
    MAX_BUNDLE_SIZE,
    TILE_WIDTH,
    Tile,
    TileNodeReader,
    bundle_tile,
    format_tile_path,
    parse_bundle,
)

__all__ = [
    "MAX_CHECKPOINT_SIZE",
    "Fetch",
    "LogVerificationError",
    "MissingFileError",
    "OnBundle",
    "Progress",
    "ReadsAhead",
    "RebuiltLog",
    "VerifiedLog",
    "dir_fetcher",
    "entry_files",
    "open_checkpoint",
    "reading",
    "rebuild_log",
    "verify_log",
]

Fetch = Callable[[str], bytes]
Progress = Callable[[int, int], None]
OnBundle = Callable[[int, list[bytes]], None]
"""What sees the entries of each well-formed bundle, in order: ``on_bundle(start, entries)``,
``start`` the index of the first."""

MAX_CHECKPOINT_SIZE = 16 * 1024


@runtime_checkable
class ReadsAhead(Protocol):
    """A :data:`Fetch` that gains from being asked for several files at once: a remote source,
    where each request waits a round trip. :func:`rebuild_log` then fetches the next
    ``read_ahead`` files it will ask for while it checks the ones it has, each in a thread of
    its own, so the fetch must be safe to call from several threads (0: no read-ahead)."""

    read_ahead: int

    def __call__(self, rel: str, /) -> bytes: ...


class LogVerificationError(TlogError):
    """The published log does not match its checkpoint."""

    code = "log_verification"
    status = 422
    title = "Published log does not verify"


class MissingFileError(LogVerificationError):
    code = "log_file_missing"
    title = "A published log file is missing"


def dir_fetcher(root: Path) -> Fetch:
    """Read published files from a directory (the ``log/`` folder of a data directory)."""

    def fetch(rel: str) -> bytes:
        path = root / rel
        try:
            return path.read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise MissingFileError(f"{rel} is missing", path=rel) from exc

    return fetch


@dataclass(frozen=True)
class VerifiedLog:
    checkpoint: Checkpoint
    entries: int
    tiles_checked: int


def open_checkpoint(fetch: Fetch, verifier: Verifier) -> Checkpoint:
    note_bytes = fetch("checkpoint")
    if len(note_bytes) > MAX_CHECKPOINT_SIZE:
        raise LogVerificationError("checkpoint is larger than any checkpoint custodes writes")
    note = open_note(note_bytes, [verifier])
    cp = parse_checkpoint(note.text)
    if cp.origin != verifier.name:
        raise LogVerificationError(
            f"checkpoint origin {cp.origin!r} is not the key's name {verifier.name!r}"
        )
    return cp


@dataclass
class RebuiltLog:
    """What :func:`rebuild_log` found.

    ``read_tile`` reads hash tiles of the tree that leads to the checkpoint's root (the
    rebuilt tree when the entries do, else the published tiles when they do, else None);
    ``findings`` is empty exactly when every file is present and matches.
    """

    checkpoint: Checkpoint
    findings: list[Finding]
    read_tile: Callable[[Tile], bytes] | None
    tiles_checked: int
    entries_verified: bool

    @property
    def verified(self) -> bool:
        return not self.findings

    @property
    def reader(self) -> NodeReader | None:
        if self.read_tile is None:
            return None
        return TileNodeReader(self.read_tile, self.checkpoint.size)


@dataclass
class _Pass:
    """Working state of one rebuild."""

    fetch: Fetch
    size: int
    built: dict[tuple[int, int], bytes] = field(default_factory=dict)
    missing: list[Finding] = field(default_factory=list)
    entry_findings: list[Finding] = field(default_factory=list)
    tile_findings: list[Finding] = field(default_factory=list)
    entries_complete: bool = True

    def get(self, path: str) -> bytes | None:
        try:
            return self.fetch(path)
        except MissingFileError:
            self.missing.append(
                Finding("file_missing", f"{path} is missing", evidence={"path": path})
            )
            return None


@contextmanager
def _reading_ahead(fetch: Fetch, upcoming: Iterator[str], depth: int) -> Iterator[Fetch]:
    """``fetch``, with the files ``upcoming`` names fetched ``depth`` at a time, in threads,
    before they are asked for; on leaving, what was not asked for is cancelled and what is
    under way is waited for.

    A file asked for gets what fetching it gave, bytes or the error it raised, when it is
    asked for: so the rebuild reads, and reports, exactly what it would have read one file at
    a time. A file that is not ahead is fetched when asked for. At most ``depth`` files are
    held, fetched or being fetched, at any time."""
    pool = ThreadPoolExecutor(depth, thread_name_prefix="custodes-read-ahead")
    ahead: dict[str, Future[bytes]] = {}

    def fill() -> None:
        while len(ahead) < depth:
            path = next(upcoming, None)
            if path is None:
                return
            ahead[path] = pool.submit(fetch, path)

    def read(path: str) -> bytes:
        future = ahead.pop(path, None)
        if future is None:
            return fetch(path)
        fill()
        try:
            return future.result()
        finally:
            del future  # else its error's traceback, through this frame, holds it: a cycle

    try:
        fill()
        yield read
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        ahead.clear()


@contextmanager
def reading(fetch: Fetch, upcoming: Iterator[str]) -> Iterator[Fetch]:
    """``fetch``, with the files ``upcoming`` names fetched ahead if the source
    :class:`ReadsAhead` (a remote one), else ``fetch`` as it is. Files are then asked for
    in that order; one asked for that is not ahead is fetched when asked for."""
    depth = fetch.read_ahead if isinstance(fetch, ReadsAhead) else 0
    with _reading_ahead(fetch, upcoming, depth) if depth > 0 else nullcontext(fetch) as read:
        yield read


def entry_files(size: int) -> Iterator[str]:
    """The files a rebuild of a tree of ``size`` entries reads entry by entry, in its order
    (:func:`_read_entries`): each bundle, then its level-0 tile."""
    for start in range(0, size, TILE_WIDTH):
        width, n = min(TILE_WIDTH, size - start), start // TILE_WIDTH
        yield format_tile_path(bundle_tile(n, width))
        yield format_tile_path(Tile(0, n, width))


def _read_bundle(data: bytes, width: int) -> tuple[list[bytes], str | None]:
    """The entries of a bundle, and what is wrong with it (None if nothing).

    A malformed bundle is read as far as it goes, so that the entries that do match can be
    told apart from the first one that does not."""
    try:
        return parse_bundle(data, width), None
    except TlogError as exc:
        problem = exc.detail
    if len(data) > MAX_BUNDLE_SIZE:
        return [], problem
    entries: list[bytes] = []
    pos = 0
    while len(entries) < width and pos + 2 <= len(data):
        length = int.from_bytes(data[pos : pos + 2], "big")
        if pos + 2 + length > len(data):
            break
        entries.append(data[pos + 2 : pos + 2 + length])
        pos += 2 + length
    return entries, problem


def _compare_leaves(
    run: _Pass, start: int, tile: Tile, hashes: list[bytes], problem: str | None
) -> bytes:
    """Compare an entry bundle's leaf hashes with the published level-0 tile; returns the
    hashes joined, as the rebuilt tile.

    Where they differ, either side may be wrong: both readings are kept, and
    :func:`rebuild_log` keeps the one that the checkpoint's root bears out."""
    tile_path = format_tile_path(tile)
    published = run.get(tile_path)
    joined = b"".join(hashes)
    if published == joined and problem is None:
        return joined  # the common case, in one comparison
    bundle_path = format_tile_path(bundle_tile(tile.index, tile.width))
    if published is not None and len(published) != tile.width * 32:
        run.tile_findings.append(_tile_mismatch(tile_path, f"has {len(published)} bytes"))
        published = None
    tiled = (
        [] if published is None else [published[i : i + 32] for i in range(0, len(published), 32)]
    )
    differ = [i for i, h in enumerate(hashes) if tiled and h != tiled[i]]
    if problem is not None:
        if differ or len(hashes) < tile.width:
            first: int | None = start + (differ[0] if differ else len(hashes))
            where = f"; entry {first} is the first that is missing or does not match {tile_path}"
        else:
            first, where = None, "; extra bytes follow its last entry"
        run.entry_findings.append(
            Finding(
                "bundle_malformed",
                f"{bundle_path}: {problem}{where if published is not None else ''}",
                entries=(first,) if first is not None else (),
                evidence={"path": bundle_path},
            )
        )
    elif differ:
        named = tuple(start + i for i in differ)
        one = len(named) == 1
        run.entry_findings.append(
            Finding(
                "entry_mismatch",
                f"entr{'y' if one else 'ies'} {', '.join(map(str, named[:MAX_NAMED]))} "
                f"of {bundle_path} do{'es' if one else ''} not match the leaf hashes in "
                f"{tile_path}",
                entries=named[:MAX_NAMED],
                evidence={"path": bundle_path, "tile": tile_path, "count": len(named)},
            )
        )
        run.tile_findings.append(_tile_mismatch(tile_path, "differs from the entries' hashes"))
    return joined


def _tile_mismatch(path: str, what: str) -> Finding:
    return Finding("tile_mismatch", f"{path} {what}", evidence={"path": path})


def _read_entries(
    run: _Pass,
    progress: Progress | None,
    on_bundle: OnBundle | None,
) -> None:
    """Phase one: every bundle, its leaf hashes, and level 0 compared with the tiles."""
    for start in range(0, run.size, TILE_WIDTH):
        width = min(TILE_WIDTH, run.size - start)
        n = start // TILE_WIDTH
        path = format_tile_path(bundle_tile(n, width))
        data = run.get(path)
        if data is None:
            run.entries_complete = False
            run.get(format_tile_path(Tile(0, n, width)))  # a missing tile is named too
            continue
        entries, problem = _read_bundle(data, width)
        joined = _compare_leaves(run, start, Tile(0, n, width), leaf_hashes(entries), problem)
        if problem is None:
            run.built[(0, n)] = joined
            if on_bundle is not None:
                on_bundle(start, entries)
        else:
            run.entries_complete = False
        if progress is not None:
            progress(start + width, run.size)


def _build_upper_levels(run: _Pass) -> None:
    """Phase two: the tiles above level 0, from the rebuilt ones, compared with the published."""
    level, count = 0, run.size
    while count >= TILE_WIDTH:
        parents = [
            root_of([run.built[(level, n)][i : i + 32] for i in range(0, 32 * TILE_WIDTH, 32)])
            for n in range(count // TILE_WIDTH)
        ]
        level, count = level + 1, count // TILE_WIDTH
        for start in range(0, count, TILE_WIDTH):
            chunk = parents[start : start + TILE_WIDTH]
            tile = Tile(level, start // TILE_WIDTH, len(chunk))
            data = b"".join(chunk)
            run.built[(level, tile.index)] = data
            published = run.get(format_tile_path(tile))
            if published is not None and published != data:
                run.tile_findings.append(
                    _tile_mismatch(
                        format_tile_path(tile), "differs from the tile rebuilt from the entries"
                    )
                )


def _published_root(run: _Pass) -> tuple[Callable[[Tile], bytes] | None, bytes | None]:
    def read(tile: Tile) -> bytes:
        return run.fetch(format_tile_path(tile))

    try:
        return read, tree_root(run.size, TileNodeReader(read, run.size))
    except TlogError:
        return None, None


def rebuild_log(
    fetch: Fetch,
    checkpoint: Checkpoint,
    progress: Progress | None = None,
    on_bundle: OnBundle | None = None,
) -> RebuiltLog:
    """Rebuild the tree ``checkpoint`` commits to from the entries ``fetch`` reads.

    ``on_bundle(start, entries)`` sees the entries of every well-formed bundle, in order,
    with the index of the first. A source that :class:`ReadsAhead` has the bundles and their
    tiles fetched ahead."""
    with reading(fetch, entry_files(checkpoint.size)) as read:
        run = _Pass(read, checkpoint.size)
        _read_entries(run, progress, on_bundle)
    run.fetch = fetch
    built_root: bytes | None = None
    if run.entries_complete:
        _build_upper_levels(run)
        built = run.built

        def read_built(tile: Tile) -> bytes:
            return built[(tile.level, tile.index)][: tile.width * 32]

        built_root = tree_root(run.size, TileNodeReader(read_built, run.size))
        if built_root == checkpoint.root:
            findings = run.missing + run.tile_findings
            return RebuiltLog(checkpoint, findings, read_built, len(built), True)
    read_published, published_root = _published_root(run)
    if published_root == checkpoint.root:
        findings = run.missing + run.entry_findings
        return RebuiltLog(checkpoint, findings, read_published, len(run.built), False)
    root_finding = Finding(
        "root_mismatch",
        "neither the entries nor the published tiles lead to the checkpoint's root",
        evidence={
            "checkpoint_root": checkpoint.root.hex(),
            "entries_root": built_root.hex() if built_root else None,
        },
    )
    findings = [*run.missing, root_finding, *run.entry_findings]
    return RebuiltLog(checkpoint, findings, None, len(run.built), False)


def verify_log(
    fetch: Fetch,
    verifier: Verifier,
    progress: Progress | None = None,
    on_bundle: OnBundle | None = None,
) -> VerifiedLog:
    """Check everything published against the signed checkpoint; returns what was checked.

    Raises :class:`LogVerificationError` (:class:`MissingFileError` for a missing file)
    naming the first problem. ``on_bundle(start, entries)`` sees every bundle's entries in
    order."""
    cp = open_checkpoint(fetch, verifier)
    rebuilt = rebuild_log(fetch, cp, progress, on_bundle)
    if rebuilt.findings:
        first = rebuilt.findings[0]
        error = MissingFileError if first.code == "file_missing" else LogVerificationError
        raise error(first.detail, finding=first.code, entries=list(first.entries))
    return VerifiedLog(cp, cp.size, rebuilt.tiles_checked)
