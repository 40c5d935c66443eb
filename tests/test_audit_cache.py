"""``custodes audit URL --cache DIR``: full tiles and bundles are fetched once and read from
disk after; the checkpoint and partial tiles always from the source; a cache can neither hide
a rewritten history nor blame the log for a copy on disk that went bad."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from custodes.audit.cache import tile_cache
from custodes.audit.errors import FetchError
from custodes.audit.logcheck import MissingFileError, ReadsAhead
from custodes.audit.source import url_fetcher
from custodes.cli.audit import audit
from custodes.tlog.tiles import MAX_BUNDLE_SIZE
from test_audit import GOLDEN, LATER
from test_audit_http import Served, serving
from test_audit_tamper import ENTRIES, publish

POLICY = str(GOLDEN / "policy")
FULL = ["tile/entries/000", "tile/0/000"]
"""The golden log's (300 entries) full bundle and tile: the files a cache keeps."""
PARTIAL = ["tile/entries/001.p/44", "tile/0/001.p/44", "tile/1/000.p/1"]

cli = typer.Typer()
cli.command("audit")(audit)


@cli.command("version")
def _version() -> None:  # a second command keeps ``audit`` a named subcommand
    pass


runner = CliRunner()


@pytest.fixture(autouse=True)
def _state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state-home"))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    root = tmp_path / "log"
    shutil.copytree(GOLDEN / "log", root)
    with serving(root) as state:
        yield state


def _audit(served: Served, cache: Path) -> tuple[int, str, list[str]]:
    """Exit status, output, and the files the server was asked for."""
    served.requests.clear()
    args = ["audit", served.url, "--policy", POLICY, "--as-of", LATER.isoformat()]
    result = runner.invoke(cli, [*args, "--cache", str(cache)])
    return result.exit_code, result.output, served.paths()


def test_a_second_audit_reads_the_full_tiles_from_the_cache(served: Served, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    code, output, asked = _audit(served, cache)
    assert code == 0, output
    assert "clean: no violations" in output and "0 files read from" in output
    assert set(FULL) <= set(asked)
    code, output, asked = _audit(served, cache)
    assert code == 0, output
    assert "clean: no violations" in output and "seen     size 300" in output
    assert f"{len(FULL)} files read from" in output
    assert not set(FULL) & set(asked), "full tiles are not fetched again"
    assert "checkpoint" in asked and set(PARTIAL) <= set(asked), "the rest always is"


def test_a_bad_copy_in_the_cache_is_dropped_and_the_log_audited_from_the_source(
    served: Served, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    _audit(served, cache)
    (copy,) = cache.glob("*/tile/entries/000")
    data = bytearray(copy.read_bytes())
    data[100] ^= 0x01  # a disk error, or someone's edit
    copy.write_bytes(bytes(data))
    code, output, asked = _audit(served, cache)
    assert code == 0, output
    assert "clean: no violations" in output, "the log is not blamed for the copy"
    assert "audited again from the source" in output
    assert asked.count("tile/entries/000") == 1, "the bundle was fetched from the source"
    assert not copy.exists(), "the cache was emptied"


def test_a_history_rewritten_since_is_found_through_the_cache(
    served: Served, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    assert _audit(served, cache)[0] == 0  # seen: the genuine log, 300 entries
    entries = list(ENTRIES)
    entries[5] = entries[5].replace(b'"time":"2026', b'"time":"2025', 1)
    shutil.rmtree(served.root)
    for rel, data in publish(entries).items():  # signed and cosigned all the same
        (served.root / rel).parent.mkdir(parents=True, exist_ok=True)
        (served.root / rel).write_bytes(data)
    code, output, _ = _audit(served, cache)
    assert code == 1, output
    assert "fork" in output and "audited again from the source" in output


def test_a_directory_is_read_as_is_with_a_note(tmp_path: Path) -> None:
    args = ["audit", str(GOLDEN), "--policy", POLICY, "--no-state", "--cache", str(tmp_path / "c")]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "--cache is for a log read over http(s)" in result.output
    assert not (tmp_path / "c").exists()


def test_only_full_tiles_that_were_fetched_are_kept(served: Served, tmp_path: Path) -> None:
    fetch = url_fetcher(served.url)
    kept = tile_cache(fetch, tmp_path / "cache")
    assert isinstance(kept, ReadsAhead) and kept.read_ahead == fetch.read_ahead
    for rel in ["checkpoint", *FULL, *PARTIAL]:
        assert kept(rel) == (served.root / rel).read_bytes()
    with pytest.raises(MissingFileError):
        kept("tile/entries/009")
    files = sorted(
        str(p.relative_to(kept.directory)) for p in kept.directory.rglob("*") if p.is_file()
    )
    assert files == ["source", *sorted(FULL)]
    assert (kept.directory / "source").read_text() == served.url + "\n"
    elsewhere = url_fetcher(served.url + "other/")
    other = tile_cache(elsewhere, tmp_path / "cache")
    assert other.directory != kept.directory, "two logs never share a cache"
    fetch.close()
    elsewhere.close()


def test_a_copy_too_long_for_any_tile_is_fetched_again(served: Served, tmp_path: Path) -> None:
    fetch = url_fetcher(served.url)
    kept = tile_cache(fetch, tmp_path / "cache")
    path = kept.directory / "tile/entries/000"
    path.parent.mkdir(parents=True)
    path.write_bytes(bytes(MAX_BUNDLE_SIZE + 1))
    assert kept("tile/entries/000") == (served.root / "tile/entries/000").read_bytes()
    assert path.read_bytes() == (served.root / "tile/entries/000").read_bytes(), "replaced"
    assert (kept.hits, kept.stored) == (0, 1)
    fetch.close()


def test_a_cache_that_cannot_be_written_is_a_one_line_error(served: Served, tmp_path: Path) -> None:
    blocked = tmp_path / "blocked"
    blocked.write_text("a file, not a directory")
    with pytest.raises(FetchError, match=r"cannot use .* as a cache"):
        tile_cache(url_fetcher(served.url), blocked)
    code, output, asked = _audit(served, blocked)
    assert code == 2 and len(output.strip().splitlines()) == 1, output
    assert "error[audit_fetch]: cannot use" in output and asked == []
