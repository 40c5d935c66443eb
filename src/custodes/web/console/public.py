"""The console's public pages: the log (checked in the browser) and the transparency figures.

Neither needs a login: both show only what the published log already tells anyone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from fastapi.responses import PlainTextResponse, RedirectResponse
from markupsafe import Markup

from custodes.deployment import Deployment
from custodes.errors import CustodesError, InputError, NotFoundError
from custodes.tlog import TlogError

from .chart import Series, render_bars
from .logview import entry_view, log_view, parse_index
from .page import Problem, render, static_response
from .transparency import Figures, FiguresCache

__all__ = ["Chart", "PublicPages", "charts_of"]

Context = Callable[[Request], Mapping[str, Any]]
"""What every page's layout needs about the visitor (who is signed in, the CSRF token)."""


@dataclass(frozen=True)
class Chart:
    """One chart of the transparency page, with the table of its figures."""

    ident: str
    title: str
    heading: str
    series: tuple[Series, ...]
    svg: Markup


def _download(filename: str) -> dict[str, str]:
    """The header that names a download (``filename`` is digits and a fixed suffix)."""
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


def charts_of(figures: Figures) -> list[Chart]:
    """The transparency page's three charts."""
    specs = (
        ("by-country", "Demands by the requesting authority's country", "country",
         figures.by_country),
        ("by-kind", "Demands by kind", "kind", figures.by_kind),
        ("by-outcome", "Demands by outcome", "outcome", figures.by_outcome),
    )  # fmt: skip
    return [
        Chart(ident, title, heading, series,
              Markup(render_bars(ident, title, figures.periods, series, "demands")))  # noqa: S704
        for ident, title, heading, series in specs
    ]  # fmt: skip


class PublicPages:
    """The view functions of the public pages, over one deployment."""

    def __init__(self, dep: Deployment, context: Context) -> None:
        self.dep = dep
        self.context = context
        self.figures = FiguresCache(dep.settings.log_dir, dep.vkey)

    def _keys(self) -> dict[str, Any]:
        return {
            "vkey": self.dep.vkey,
            "witnesses": [w.vkey for w in self.dep.settings.witnesses],
        }

    def _page(self, request: Request, template: str, status: int = 200, **values: Any) -> Response:
        return render(template, {**self.context(request), **values}, status=status)

    def log(self, request: Request, before: str | None = None) -> Response:
        """The current checkpoint, checked in the browser, and the latest entries."""
        error = None
        try:
            at = None if before is None else parse_index(before, what="page start")
        except InputError as exc:
            at, error = None, Problem.of("Not a page of the log.", exc)
        view = log_view(self.dep, at)
        return self._page(request, "log.html", 400 if error else 200, section="log", view=view,
                          asked="", error=error, **self._keys())  # fmt: skip

    def find_entry(self, request: Request, index: str | None = None) -> Response:
        """The log page's look-up form: on to the entry, or back with what was wrong."""
        try:
            number = parse_index(index)
        except InputError as exc:
            view = log_view(self.dep)
            error = Problem.of("No such entry.", exc)
            return self._page(request, "log.html", 400, section="log", view=view,
                              asked=index or "", error=error, **self._keys())  # fmt: skip
        return RedirectResponse(f"/console/log/{number}", status_code=303)

    def entry(self, request: Request, index: str) -> Response:
        """One entry, its event and its receipt, checked in the browser."""
        try:
            view = entry_view(self.dep, parse_index(index))
        except InputError as exc:
            error = Problem.of("No such entry.", exc)
            return self._page(request, "log.html", 404, section="log", view=log_view(self.dep),
                              asked=index[:20], error=error, **self._keys())  # fmt: skip
        return self._page(request, "log_entry.html", section="log", entry=view, **self._keys())

    def receipt(self, index: str) -> Response:
        """The entry's receipt as a ``N.tlog-proof`` file."""
        view = entry_view(self.dep, parse_index(index))
        if view.receipt is None:
            raise NotFoundError(f"no signed checkpoint covers entry {index} yet")
        headers = _download(f"{view.index}.tlog-proof") | {"Cache-Control": "no-store"}
        return PlainTextResponse(view.receipt, headers=headers)

    def entry_bytes(self, index: str) -> Response:
        """The entry's bytes as published, as a file ``N`` (beside ``N.tlog-proof``, what
        ``custodes log check`` reads). An entry never changes, so it may be kept."""
        view = entry_view(self.dep, parse_index(index))
        headers = _download(str(view.index)) | {"Cache-Control": "public, max-age=31536000"}
        return Response(view.data, media_type="application/octet-stream", headers=headers)

    def transparency(self, request: Request) -> Response:
        """Charts of demands by country, kind and outcome, quarter by quarter."""
        try:
            figures = self.figures.figures()
        except (CustodesError, TlogError) as exc:
            error = Problem.of("The published log does not verify.", exc)
            return self._page(request, "error.html", 503, section="transparency", problem=error)
        return self._page(
            request, "transparency.html", section="transparency", figures=figures,
            charts=charts_of(figures), log_url=str(request.base_url) + "log/", **self._keys(),
        )  # fmt: skip

    def static(self, name: str) -> Response:
        """A static file of the console (``NotFoundError`` for any other name)."""
        found = static_response(name)
        if found is None:
            raise NotFoundError(f"the console has no static file {name!r}")
        return found
