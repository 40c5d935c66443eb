"""The pages only signed-in staff see: the queue, a demand, and its review forms.

A page asked for without a session redirects to the sign-in form. A review form is a POST
with the session's CSRF token (checked by :func:`custodes.web.auth.current_caller` before
anything runs); on success it redirects back to the demand page (POST-redirect-GET), and when
the service refuses, the page comes back with the refusal, the rule that decided it, and the
HTTP status of the error.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool

from custodes.errors import CustodesError, ForbiddenError, InputError
from custodes.model import DataCategory, DemandKind, DemandState
from custodes.service.authorities import list_authorities
from custodes.web.auth import Caller
from custodes.web.context import services_of

from .demand import DONE, demand_view, perform
from .forms import Action, parse_review_form
from .page import Problem, render
from .queue import ALL, WAITING, QueueFilters, demand_queue, parse_filters
from .session import layout, signed_in, to_sign_in

__all__ = ["StaffPages"]


class StaffPages:
    """The view functions of the staff pages."""

    async def queue(self, request: Request) -> Response:
        """Demands by state, deadline and priority, with filters."""
        caller = await signed_in(request)
        if caller is None:
            return to_sign_in(request)
        services = services_of(request)
        error, status = None, 200
        try:
            filters = parse_filters(dict(request.query_params))
        except InputError as exc:
            filters, error, status = QueueFilters(), Problem.of("Unknown filter.", exc), 400
        items = await run_in_threadpool(demand_queue, services, filters)
        authorities = await run_in_threadpool(list_authorities, services)
        context: dict[str, Any] = {
            **layout(request, caller), "section": "queue", "error": error, "items": items,
            "filters": filters, "authorities": authorities,
            "jurisdictions": sorted({a.jurisdiction for a in authorities}
                                    | {a.country for a in authorities}),
            "states": [WAITING, ALL, *(s.value for s in DemandState)],
            "kinds": [k.value for k in DemandKind], "now": services.clock(),
        }  # fmt: skip
        return render("queue.html", context, status=status)

    async def _page(
        self, request: Request, caller: Caller, demand_id: str, *, status: int = 200,
        error: Problem | None = None, flash: str | None = None,
    ) -> Response:  # fmt: skip
        services = services_of(request)
        try:
            view = await run_in_threadpool(demand_view, services, demand_id, caller.staff)
        except CustodesError as exc:
            problem = Problem.of("No such demand.", exc)
            context = {**layout(request, caller), "section": "queue", "problem": problem}
            return render("error.html", context, status=exc.status)
        context = {
            **layout(request, caller), "section": "queue", "view": view, "error": error,
            "flash": flash, "categories": [c.value for c in DataCategory], "Action": Action,
            "now": services.clock(),
        }  # fmt: skip
        return render("demand.html", context, status=status)

    async def demand(self, request: Request, demand_id: str, done: str = "") -> Response:
        """One demand: instrument, targets, findings, review, history; the review forms."""
        caller = await signed_in(request)
        if caller is None:
            return to_sign_in(request)
        flash = None
        if done in {a.value for a in Action}:
            flash = DONE[Action(done)]
        return await self._page(request, caller, demand_id, flash=flash)

    async def act(self, request: Request, demand_id: str, action: str) -> Response:
        """Run one review form (POST, with the session's CSRF token)."""
        try:
            caller = await signed_in(request)
        except ForbiddenError as exc:  # a CSRF failure: nothing ran
            problem = Problem.of("This form was not sent from the console.", exc)
            context = {**layout(request, None), "problem": problem}
            return render("error.html", context, status=exc.status)
        if caller is None:
            return to_sign_in(request)
        services = services_of(request)
        fields = (await request.form()).multi_items()
        try:
            view = await run_in_threadpool(demand_view, services, demand_id, caller.staff)
            form = parse_review_form(action, fields, view.record.scope)
            await run_in_threadpool(perform, services, demand_id, caller.staff, form)
        except CustodesError as exc:
            problem = Problem.of(_failed(action), exc)
            return await self._page(request, caller, demand_id, status=exc.status, error=problem)
        return RedirectResponse(f"/console/demands/{demand_id}?done={form.action.value}#top",
                                status_code=303)  # fmt: skip


def _failed(action: str) -> str:
    words = {
        "approve": "Approval refused.", "sign-off": "Sign-off refused.",
        "decide": "Decision refused.", "narrow": "Narrowing refused.",
        "refuse": "Refusal not recorded.", "clarify": "Clarification request not recorded.",
        "challenge": "Challenge not recorded.", "resume": "Review not resumed.",
        "screen": "Screening failed.",
    }  # fmt: skip
    return words.get(action, "That did not work.")
