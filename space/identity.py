"""Who is voting: the socket peer address, forwarded headers only from trusted proxies, or a signed-in account.

    policy = VoterPolicy.from_env()            # COLORLAB_TRUSTED_PROXY_HOPS, COLORLAB_SIGNIN, COLORLAB_SIGNED_IN_ONLY
    voter = policy.voter(request, profile)     # "hf:<username>" when signed in, else the client's address

Why: trusting `X-Forwarded-For` unconditionally let a client with no proxy in front send a new address per round
(20 of 20 votes accepted while its real address was rate-limited). A forwarded header is only as trustworthy as
the proxies that wrote it, so it is read only for as many hops as the operator says sit in front of the app
(default 0: the socket peer is the client). On a Hugging Face Space, detected from the SPACE_ID / SPACE_HOST
variables the platform sets, the Space's proxy is one trusted hop: the client is the last entry it appended.

Sign-in (Hugging Face OAuth, gr.LoginButton) is offered on Spaces that enable it (`hf_oauth: true` sets
OAUTH_CLIENT_ID) or with COLORLAB_SIGNIN=1; a signed-in account is the voter wherever it votes from. With
COLORLAB_SIGNED_IN_ONLY=1 only signed-in people can vote (anonymous rounds are refused with a sentence).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ANONYMOUS = "anonymous"


class SignInRequired(ValueError):
    """This arena counts only signed-in votes; the message says how to sign in."""


def _flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def on_hugging_face_space(env: Mapping[str, str]) -> bool:
    """Whether the app runs on a Hugging Face Space (the platform sets both variables)."""
    return bool(env.get("SPACE_ID")) and bool(env.get("SPACE_HOST"))


@dataclass(frozen=True)
class VoterPolicy:
    proxy_hops: int = 0  # how many proxies in front of the app append to X-Forwarded-For and are trusted
    signin: bool = False  # offer Hugging Face sign-in
    signed_in_only: bool = False  # refuse anonymous votes

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> VoterPolicy:
        env = os.environ if env is None else env
        space = on_hugging_face_space(env)
        raw = env.get("COLORLAB_TRUSTED_PROXY_HOPS", "").strip()
        if raw:
            if not raw.isdigit():
                raise ValueError(f"COLORLAB_TRUSTED_PROXY_HOPS must be a whole number >= 0, not {raw!r}.")
            hops = int(raw)
        else:
            hops = 1 if space else 0
        signed_in_only = _flag(env, "COLORLAB_SIGNED_IN_ONLY")
        signin = signed_in_only or _flag(env, "COLORLAB_SIGNIN") or (space and bool(env.get("OAUTH_CLIENT_ID")))
        return cls(proxy_hops=hops, signin=signin, signed_in_only=signed_in_only)

    def client_address(self, peer: str | None, forwarded_for: str | None) -> str:
        """The client's address: the peer, or the entry the outermost trusted proxy appended."""
        if self.proxy_hops > 0:
            entries = [entry.strip() for entry in (forwarded_for or "").split(",") if entry.strip()]
            # Proxy k (counting from the app) appends the address it received the request from, so with N trusted
            # proxies the client is the N-th entry from the right; anything further left the client wrote itself.
            if len(entries) >= self.proxy_hops:
                return entries[-self.proxy_hops]
        return peer or ANONYMOUS

    def voter(self, request: Any, profile: Mapping[str, Any] | None = None) -> str:
        """The voter identifier for the rate limits, token binding and outlier test (the store hashes it)."""
        username = (profile or {}).get("preferred_username")  # gr.OAuthProfile is the OAuth userinfo dict
        if username:
            return f"hf:{username}"
        if self.signed_in_only:
            raise SignInRequired("This arena counts only signed-in votes; sign in with Hugging Face and try again.")
        if request is None:
            return ANONYMOUS
        headers = getattr(request, "headers", None) or {}
        peer = getattr(getattr(request, "client", None), "host", None)
        return self.client_address(peer, headers.get("x-forwarded-for", ""))
