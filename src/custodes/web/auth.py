"""Staff authentication, shared by the JSON API and the console.

Who a staff member is comes from two factors: an argon2id password hash and a TOTP code
(RFC 6238, 30-second steps, each step good once). A successful :func:`login` opens a
*session* (the console's cookie); a staff member may also hold *API tokens* for automation
(``Authorization: Bearer cst_...``). Roles and location always come from the staff registry,
never from the credential, so a role revoked is revoked for every open session at once.

API::

    current_caller(request) -> Caller       FastAPI dependency: session cookie or bearer token;
                                            checks CSRF on unsafe methods of a session and
                                            counts the request against the staff rate limit
    current_staff(request) -> Staff         the same, just the registered staff member
    permitted(action) -> dependency         the Staff, once the Cedar pack allows ``action``
                                            (``custodes.policy.authorize``)
    login(services, config, staff_id, password, code) -> NewSession
    logout(services, session_id) -> None
    set_session_cookie(response, request, new)   clear_session_cookie(response)
    csrf_token(request) -> str | None       what a form (field ``csrf_token``) or a script
                                            (header ``X-CSRF-Token``) echoes on POST/PUT/DELETE
    set_credentials(services, staff_id, password, totp_secret=None) -> str  (the TOTP secret)
    change_password(services, staff_id, current, new) -> None
    totp_uri(staff_id, secret) -> str       otpauth:// URI for an authenticator app
    issue_token / list_tokens / revoke_token (custodes.web.tokens)

Sessions expire after :attr:`~custodes.web.context.ApiConfig.session_idle` without use and
:attr:`~custodes.web.context.ApiConfig.session_max` after login. Cookie and token secrets are
256 random bits of which only the SHA-256 is stored. The CSRF token is an HMAC of the session
secret, so it needs no storage and a page that cannot read the cookie cannot compute it; an
``Origin`` header, when sent, must also be this server's.

Every failure to log in is the same ``login_failed`` (no hint whether the id, the password or
the code was wrong); an unknown id costs the same argon2 work as a known one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import argon2
import pyotp
import sqlalchemy as sa
from fastapi import Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from custodes.errors import AuthError, ForbiddenError, InputError, NotFoundError
from custodes.model import Staff
from custodes.policy import authorize
from custodes.service import Services
from custodes.service.lifecycle import utc
from custodes.service.staff import get_staff
from custodes.store.api_tables import staff_credentials, staff_sessions, staff_tokens

from .context import ApiConfig, config_of, services_of
from .limits import count_request

__all__ = [
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SESSION_COOKIE",
    "Caller",
    "CallerDep",
    "CsrfError",
    "LoginError",
    "NewSession",
    "SessionExpiredError",
    "StaffDep",
    "WeakPasswordError",
    "change_password",
    "check_password",
    "clear_session_cookie",
    "csrf_token",
    "current_caller",
    "current_staff",
    "format_secret",
    "login",
    "logout",
    "parse_secret",
    "permitted",
    "set_credentials",
    "set_session_cookie",
    "totp_uri",
]

SESSION_COOKIE = "custodes_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MIN_PASSWORD = 12
MAX_PASSWORD = 256
TOTP_ISSUER = "custodes"
_SECRET = re.compile(r"((?:ses|cst)_[0-9a-f]{24})\.([A-Za-z0-9_-]{43})")
_CSRF_CONTEXT = b"custodes/csrf/v1"
_HASHER = argon2.PasswordHasher()  # argon2id, RFC 9106 second recommended parameters
_DUMMY_HASH = _HASHER.hash("no such staff member: this hash only spends the same time")


class LoginError(AuthError):
    code = "login_failed"
    title = "Login failed"


class SessionExpiredError(AuthError):
    code = "session_expired"
    title = "Session expired"


class CsrfError(ForbiddenError):
    code = "csrf_failed"
    title = "Cross-site request refused"


class WeakPasswordError(InputError):
    code = "weak_password"
    title = "Password too weak"


@dataclass(frozen=True)
class Caller:
    """An authenticated staff member and how they authenticated."""

    staff: Staff
    session_id: str | None = None
    token_id: str | None = None


@dataclass(frozen=True)
class NewSession:
    """A session just opened: its id, the cookie value (shown once) and its expiry."""

    id: str
    staff: Staff
    cookie: str
    expires_at: datetime

    @property
    def csrf(self) -> str:
        return _csrf_for(self.cookie)


# -- secrets -------------------------------------------------------------------------------


def format_secret(prefix: str, ident_hex: str, secret: bytes) -> str:
    """``<prefix>_<24 hex>.<43 base64url>``: a session cookie (``ses``) or API token (``cst``).

    >>> format_secret("cst", "0" * 24, bytes(32))
    'cst_000000000000000000000000.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'
    >>> parse_secret(_) == ("cst_" + "0" * 24, bytes(32))
    True
    """
    return f"{prefix}_{ident_hex}.{base64.urlsafe_b64encode(secret).decode().rstrip('=')}"


def parse_secret(text: str) -> tuple[str, bytes]:
    """The id and secret of a cookie or token; ``AuthError`` when it is malformed."""
    match = _SECRET.fullmatch(text) if len(text) <= 128 else None
    if match is None:
        raise AuthError("the credential is malformed")
    secret = base64.urlsafe_b64decode(match.group(2) + "=")
    if format_secret(match.group(1)[:3], match.group(1)[4:], secret) != text:
        raise AuthError("the credential is malformed")
    return match.group(1), secret


def new_secret(prefix: str) -> tuple[str, bytes, str]:
    """A fresh (id, secret, text) with ``prefix``."""
    ident, secret = secrets.token_hex(12), secrets.token_bytes(32)
    return f"{prefix}_{ident}", secret, format_secret(prefix, ident, secret)


def _digest(secret: bytes) -> bytes:
    return hashlib.sha256(secret).digest()


def _csrf_for(cookie: str) -> str:
    _, secret = parse_secret(cookie)
    mac = hmac.new(secret, _CSRF_CONTEXT, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


# -- credentials ---------------------------------------------------------------------------


def check_password(password: str) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise WeakPasswordError(
            f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters; a passphrase is best"
        )
    return password


def totp_uri(staff_id: str, secret: str) -> str:
    """The ``otpauth://`` URI an authenticator app scans to hold ``secret``."""
    return pyotp.TOTP(secret).provisioning_uri(name=staff_id, issuer_name=TOTP_ISSUER)


def set_credentials(
    services: Services, staff_id: str, password: str, *, totp_secret: str | None = None
) -> str:
    """Set ``staff_id``'s password and TOTP secret (a fresh one unless given); returns the
    TOTP secret. The staff member must be registered (``NotFoundError``)."""
    check_password(password)
    get_staff(services, staff_id)
    secret = totp_secret or pyotp.random_base32()
    if not re.fullmatch(r"[A-Z2-7]{32,128}", secret):
        raise InputError("a TOTP secret is 32-128 base32 characters")
    hashed = _HASHER.hash(password)
    now = services.clock()
    values = {"password_hash": hashed, "totp_secret": secret, "totp_last_step": 0}

    def work(conn: sa.Connection) -> None:
        t = staff_credentials
        done = conn.execute(
            t.update().where(t.c.staff_id == staff_id).values(updated_at=now, **values)
        )
        if not done.rowcount:
            conn.execute(t.insert().values(staff_id=staff_id, updated_at=now, **values))

    services.store.write(work)
    return secret


def _credentials(services: Services, staff_id: str) -> Any:
    with services.store.read() as conn:
        return conn.execute(
            sa.select(staff_credentials).where(staff_credentials.c.staff_id == staff_id)
        ).first()


def _check_password(row: Any, password: str) -> bool:
    try:
        return bool(_HASHER.verify(row.password_hash if row else _DUMMY_HASH, password))
    except (argon2.exceptions.VerificationError, argon2.exceptions.InvalidHashError):
        return False


def change_password(services: Services, staff_id: str, current: str, new: str) -> None:
    """The staff member changes their own password (the current one is checked)."""
    check_password(new)
    row = _credentials(services, staff_id)
    if row is None or not _check_password(row, current):
        raise LoginError("the current password is wrong")
    hashed = _HASHER.hash(new)
    t = staff_credentials
    services.store.write(
        lambda conn: conn.execute(
            t.update()
            .where(t.c.staff_id == staff_id)
            .values(password_hash=hashed, updated_at=services.clock())
        )
    )


# -- sessions ------------------------------------------------------------------------------


def login(
    services: Services, config: ApiConfig, staff_id: str, password: str, code: str
) -> NewSession:
    """Check ``staff_id``'s password and TOTP ``code``; open a session. Every failure is the
    same ``LoginError``; attempts (right or wrong) are rate-limited per staff id."""
    now = services.clock()
    bucket = "login:" + staff_id[:128]
    services.store.write(
        lambda conn: count_request(
            conn, bucket, limit=config.login_rate, window=config.login_window, now=now
        )
    )
    row = _credentials(services, staff_id) if len(staff_id) <= 128 else None
    password_ok = _check_password(row, password[:MAX_PASSWORD])
    if row is None or not password_ok:
        raise LoginError("wrong staff id, password or code")
    try:
        step = pyotp.TOTP(row.totp_secret).verify_and_get_timecode(
            code.strip(), for_time=now, valid_window=1
        )
    except (pyotp.exceptions.OTPVerificationError, ValueError):
        raise LoginError("wrong staff id, password or code") from None
    try:
        staff = get_staff(services, staff_id)
    except NotFoundError:
        raise LoginError("wrong staff id, password or code") from None
    sid, secret, cookie = new_secret("ses")
    expires = now + config.session_max

    def work(conn: sa.Connection) -> None:
        t = staff_credentials
        fresh = conn.execute(
            t.update()
            .where(t.c.staff_id == staff_id, t.c.totp_last_step < step)
            .values(totp_last_step=step)
        )
        if not fresh.rowcount:  # this code was used already
            raise LoginError("wrong staff id, password or code")
        ended = staff_sessions.c.expires_at < now - timedelta(days=1)
        conn.execute(staff_sessions.delete().where(staff_sessions.c.staff_id == staff_id, ended))
        conn.execute(
            staff_sessions.insert().values(
                id=sid, secret_sha256=_digest(secret), staff_id=staff_id, created_at=now,
                expires_at=expires, last_seen_at=now,
            )
        )  # fmt: skip

    services.store.write(work)
    if _HASHER.check_needs_rehash(row.password_hash):
        set_credentials(services, staff_id, password, totp_secret=row.totp_secret)
    return NewSession(sid, staff, cookie, expires)


def logout(services: Services, session_id: str) -> None:
    """End a session (its cookie stops working everywhere)."""
    t = staff_sessions
    services.store.write(
        lambda conn: conn.execute(
            t.update()
            .where(t.c.id == session_id, t.c.ended_at.is_(None))
            .values(ended_at=services.clock())
        )
    )


def set_session_cookie(response: Response, request: Request, new: NewSession) -> None:
    """Hand the browser its session cookie: HttpOnly, SameSite=Strict, Secure over HTTPS, and
    gone when the browser closes (the server ends the session itself, see the module)."""
    response.set_cookie(
        SESSION_COOKIE,
        new.cookie,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")


def csrf_token(request: Request) -> str | None:
    """The CSRF token of the request's session (None without a well-formed session cookie)."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie is None:
        return None
    try:
        return _csrf_for(cookie)
    except AuthError:
        return None


# -- authenticating a request --------------------------------------------------------------


def _by_token(services: Services, text: str, now: datetime) -> Caller:
    tid, secret = parse_secret(text)
    t = staff_tokens
    with services.store.read() as conn:
        row = conn.execute(sa.select(t).where(t.c.id == tid)).first()
    if row is None or not hmac.compare_digest(row.secret_sha256, _digest(secret)):
        raise AuthError("the API token is not valid")
    if row.revoked_at is not None or utc(row.expires_at) <= now:
        raise AuthError("the API token has expired or was revoked")
    return Caller(_registered(services, row.staff_id), token_id=tid)


def _by_session(services: Services, config: ApiConfig, cookie: str, now: datetime) -> Caller:
    sid, secret = parse_secret(cookie)
    t = staff_sessions
    with services.store.read() as conn:
        row = conn.execute(sa.select(t).where(t.c.id == sid)).first()
    if row is None or not hmac.compare_digest(row.secret_sha256, _digest(secret)):
        raise AuthError("the session is not valid; log in")
    idle = utc(row.last_seen_at) + config.session_idle <= now
    if row.ended_at is not None or utc(row.expires_at) <= now or idle:
        raise SessionExpiredError("the session has ended; log in again")
    return Caller(_registered(services, row.staff_id), session_id=sid)


def _registered(services: Services, staff_id: str) -> Staff:
    try:
        return get_staff(services, staff_id)
    except NotFoundError:
        raise AuthError("the credential's staff member is no longer registered") from None


def _authenticate(
    services: Services, config: ApiConfig, authorization: str | None, cookie: str | None
) -> Caller:
    now = services.clock()
    if authorization is not None:
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer" or not credential:
            raise AuthError("use Authorization: Bearer <API token>")
        return _by_token(services, credential.strip(), now)
    if cookie is not None:
        return _by_session(services, config, cookie, now)
    raise AuthError("log in, or send an API token")


async def _check_csrf(request: Request, cookie: str) -> None:
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise CsrfError(f"a request from {origin[:200]} may not act in this session")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and "form" in request.headers.get("content-type", ""):
        form = await request.form()
        field = form.get(CSRF_FIELD)
        sent = field if isinstance(field, str) else None
    if sent is None or not hmac.compare_digest(sent.encode(), _csrf_for(cookie).encode()):
        raise CsrfError(f"send the session's CSRF token in {CSRF_HEADER} or {CSRF_FIELD}")


def _count(services: Services, config: ApiConfig, caller: Caller) -> None:
    now = services.clock()

    def work(conn: sa.Connection) -> None:
        count_request(
            conn, "staff:" + caller.staff.id, limit=config.staff_rate,
            window=config.rate_window, now=now,
        )  # fmt: skip
        if caller.session_id is not None:
            t = staff_sessions
            conn.execute(t.update().where(t.c.id == caller.session_id).values(last_seen_at=now))

    services.store.write(work)


async def current_caller(request: Request) -> Caller:
    """FastAPI dependency: the authenticated staff member (``AuthError`` if none)."""
    known = getattr(request.state, "caller", None)
    if isinstance(known, Caller):
        return known
    services, config = services_of(request), config_of(request)
    authorization = request.headers.get("authorization")
    cookie = request.cookies.get(SESSION_COOKIE)
    caller = await run_in_threadpool(_authenticate, services, config, authorization, cookie)
    if caller.session_id is not None and request.method not in SAFE_METHODS:
        assert cookie is not None
        await _check_csrf(request, cookie)
    await run_in_threadpool(_count, services, config, caller)
    request.state.caller = caller
    return caller


CallerDep = Annotated[Caller, Depends(current_caller)]
"""A route parameter annotated so: the authenticated caller."""


async def current_staff(caller: CallerDep) -> Staff:
    """FastAPI dependency: the authenticated, registered staff member."""
    return caller.staff


StaffDep = Annotated[Staff, Depends(current_staff)]
"""A route parameter annotated so: the authenticated, registered staff member."""


def permitted(action: str) -> Callable[..., Awaitable[Staff]]:
    """A FastAPI dependency giving the caller once the policy pack allows ``action``."""

    async def dependency(request: Request, staff: StaffDep) -> Staff:
        authorize(services_of(request).pack, staff, action).check()
        return staff

    dependency.__name__ = f"permitted_{action.replace('.', '_')}"
    return dependency
