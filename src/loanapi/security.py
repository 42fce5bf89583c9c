"""Password hashing (passlib) and access tokens (python-jose): the only module that imports them."""

import functools
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

import anyio
import anyio.to_thread
from jose import ExpiredSignatureError, JWTError, jwt
from passlib.context import CryptContext

from loanapi.clock import utcnow
from loanapi.config import Settings

T = TypeVar("T")

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("sub", "role", "iat", "exp", "jti")
VERIFIED_TOKENS = 4096  # per process; a token takes well under 1 KiB


class Hasher:
    """PBKDF2-SHA256 with a 16-byte salt; every hash runs in a worker thread.

    A PBKDF2 verification costs a sizeable fraction of a second of CPU, so it must never run
    on the event loop. `dummy_verify` spends the same time for an unknown username.
    """

    def __init__(self, rounds: int, *, concurrent: int = 1) -> None:
        # Hashes are CPU-bound: more at once per process only queue for the same cores and
        # starve the event loop's thread; the rest wait their turn.
        self._limiter = anyio.CapacityLimiter(concurrent)
        self._context = CryptContext(
            schemes=["pbkdf2_sha256"],
            pbkdf2_sha256__default_rounds=rounds,
            pbkdf2_sha256__min_rounds=rounds,
            pbkdf2_sha256__salt_size=16,
        )
        self._dummy_hash = self._context.hash(uuid.uuid4().hex)

    async def hash(self, password: str) -> str:
        return await self._run(self._context.hash, password)

    async def verify(self, password: str, password_hash: str) -> tuple[bool, str | None]:
        """Check a password; the second value is a new hash when the stored one is outdated."""
        return await self._run(self._context.verify_and_update, password, password_hash)

    async def dummy_verify(self, password: str) -> None:
        await self._run(self._context.verify, password, self._dummy_hash)

    async def _run(self, function: Callable[..., T], *args: str) -> T:
        return await anyio.to_thread.run_sync(function, *args, limiter=self._limiter)


@dataclass(frozen=True)
class TokenClaims:
    user_id: int
    role: str
    jti: str
    issued_at: datetime
    expires_at: datetime


class InvalidToken(Exception):
    """The token is missing a claim, malformed, tampered with, expired or uses another algorithm."""


class ExpiredToken(InvalidToken):
    """The token was valid, and its hour is over."""


class TokenCodec:
    def __init__(self, secret_key: str, minutes: int) -> None:
        self._key = secret_key
        self.lifetime = timedelta(minutes=minutes)
        # A client sends the same token with every request for an hour: its signature and
        # claims are checked once (a valid token's claims never change); expiry every time.
        self._verified = functools.lru_cache(maxsize=VERIFIED_TOKENS)(self._verify)

    def issue(self, *, user_id: int, role: str) -> str:
        now = utcnow()
        claims = {
            "sub": str(user_id),
            "role": role,
            # To the millisecond (RFC 7519 allows a fraction): a password changed in the same
            # second as a login revokes the tokens issued before it, not the ones after.
            "iat": round(now.timestamp(), 3),
            "exp": int((now + self.lifetime).timestamp()),
            "jti": uuid.uuid4().hex,
        }
        return str(jwt.encode(claims, self._key, algorithm=ALGORITHM))

    def read(self, token: str) -> TokenClaims:
        claims = self._verified(token)
        if claims.expires_at <= utcnow():
            raise ExpiredToken("Signature has expired.")
        return claims

    def _verify(self, token: str) -> TokenClaims:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != ALGORITHM:
                raise InvalidToken("unexpected algorithm")
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                options={"require_" + name: True for name in ("iat", "exp", "sub", "jti")},
            )
        except ExpiredSignatureError as exc:
            raise ExpiredToken(str(exc)) from exc
        except JWTError as exc:
            raise InvalidToken(str(exc)) from exc
        if any(claims.get(name) in (None, "") for name in REQUIRED_CLAIMS):
            raise InvalidToken("missing claim")
        try:
            user_id = int(claims["sub"])
            issued_at = datetime.fromtimestamp(float(claims["iat"]), utcnow().tzinfo)
            expires_at = datetime.fromtimestamp(int(claims["exp"]), utcnow().tzinfo)
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidToken("malformed claim") from exc
        if issued_at > utcnow() + timedelta(seconds=30):
            raise InvalidToken("issued in the future")
        return TokenClaims(user_id, str(claims["role"]), str(claims["jti"]), issued_at, expires_at)


def token_codec(settings: Settings) -> TokenCodec:
    assert settings.secret_key, "settings.with_secret() must run first"
    return TokenCodec(settings.secret_key, settings.access_token_minutes)
