"""Voter identity (space.identity): the socket peer by default, forwarded headers only through trusted proxies,
signed-in accounts; and, end to end, a forged X-Forwarded-For that no longer buys fresh votes or pairs."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from app_support import launched, load_app, save_tiny_models
from gradio_client import Client
from gradio_client.exceptions import AppError

from space.identity import SignInRequired, VoterPolicy


def _request(peer: str, forwarded: str = "") -> SimpleNamespace:
    headers = {"x-forwarded-for": forwarded} if forwarded else {}
    return SimpleNamespace(session_hash="s", client=SimpleNamespace(host=peer), headers=headers)


def test_without_trusted_proxies_the_socket_peer_is_the_voter() -> None:
    policy = VoterPolicy.from_env({})
    assert policy.proxy_hops == 0 and not policy.signin
    assert policy.voter(_request("203.0.113.7", "1.2.3.4")) == "203.0.113.7"
    assert policy.voter(_request("203.0.113.7", "1.2.3.4, 5.6.7.8")) == "203.0.113.7"


@pytest.mark.parametrize(
    ("hops", "forwarded", "expected"),
    [
        (1, "9.9.9.9, 198.51.100.4", "198.51.100.4"),  # the client forged 9.9.9.9; the proxy appended the rest
        (2, "9.9.9.9, 198.51.100.4, 10.0.0.2", "198.51.100.4"),
        (2, "10.0.0.2", "10.0.0.1"),  # fewer entries than trusted hops: misconfigured, fall back to the peer
        (1, "", "10.0.0.1"),
    ],
)
def test_trusted_proxy_hops_pick_the_entry_the_outermost_proxy_wrote(hops: int, forwarded: str, expected: str) -> None:
    policy = VoterPolicy.from_env({"COLORLAB_TRUSTED_PROXY_HOPS": str(hops)})
    assert policy.voter(_request("10.0.0.1", forwarded)) == expected


def test_a_hugging_face_space_trusts_its_one_proxy_and_offers_sign_in_when_oauth_is_on() -> None:
    space = {"SPACE_ID": "you/colorlab", "SPACE_HOST": "you-colorlab.hf.space"}
    assert VoterPolicy.from_env(space) == VoterPolicy(proxy_hops=1, signin=False)
    assert VoterPolicy.from_env({**space, "OAUTH_CLIENT_ID": "x"}).signin
    assert VoterPolicy.from_env({**space, "COLORLAB_TRUSTED_PROXY_HOPS": "0"}).proxy_hops == 0
    with pytest.raises(ValueError, match="COLORLAB_TRUSTED_PROXY_HOPS must be a whole number >= 0, not 'one'"):
        VoterPolicy.from_env({"COLORLAB_TRUSTED_PROXY_HOPS": "one"})


def test_a_signed_in_account_is_the_voter_wherever_it_votes_from() -> None:
    policy = VoterPolicy.from_env({"COLORLAB_SIGNIN": "1"})
    profile = {"preferred_username": "ada", "name": "Ada"}
    assert policy.voter(_request("10.0.0.1"), profile) == policy.voter(_request("10.0.0.2"), profile) == "hf:ada"
    assert policy.voter(_request("10.0.0.1"), None) == "10.0.0.1"  # sign-in is optional by default


def test_signed_in_only_refuses_anonymous_voters_with_a_sentence() -> None:
    policy = VoterPolicy.from_env({"COLORLAB_SIGNED_IN_ONLY": "1"})
    assert policy.signin and policy.voter(_request("10.0.0.1"), {"preferred_username": "ada"}) == "hf:ada"
    with pytest.raises(SignInRequired, match="counts only signed-in votes; sign in with Hugging Face"):
        policy.voter(_request("10.0.0.1"), None)


@pytest.fixture(params=["0"], ids=["no-proxy"])
def app_url(request, monkeypatch, tmp_path: Path):
    config = save_tiny_models(tmp_path / "models", ["pix2pix_tiny", "unet_tiny"])
    limits = {"COLORLAB_VOTES_PER_MINUTE": "3", "COLORLAB_PAIRS_PER_MINUTE": "5"}
    app = load_app(monkeypatch, tmp_path, config, COLORLAB_TRUSTED_PROXY_HOPS=request.param, **limits)
    with launched(app) as url:
        yield url


def _forged(url: str, tmp_path: Path, address: str) -> Client:
    return Client(url, verbose=False, headers={"X-Forwarded-For": address}, download_files=str(tmp_path / "dl"))


@pytest.mark.parametrize("app_url", ["0", "1"], ids=["no-proxy", "one-trusted-proxy"], indirect=True)
def test_a_new_forged_address_per_round_does_not_buy_more_votes(app_url: str, tmp_path: Path, request) -> None:
    accepted, refused = 0, []
    for round_ in range(5):
        client = _forged(app_url, tmp_path, f"198.51.100.{round_}")
        client.predict(None, False, api_name="/arena_next")
        try:
            client.predict(None, None, api_name="/vote_a")
            accepted += 1
        except AppError as error:
            refused.append(str(error))
    if "one-trusted-proxy" in request.node.name:  # the header is the (trusted) proxy's word: 5 distinct clients
        assert accepted == 5
        return
    assert accepted == 3  # the real address's budget, not 5 fresh identities
    assert all("Too many votes: at most 3 every 60 s; try again in" in message for message in refused)


def test_next_pair_is_rate_limited_per_voter_whatever_the_header_says(app_url: str, tmp_path: Path) -> None:
    for round_ in range(5):
        _forged(app_url, tmp_path, f"198.51.100.{round_}").predict(None, False, api_name="/arena_next")
    with pytest.raises(AppError, match="Too many new pairs: at most 5 every 60 s; try again in"):
        _forged(app_url, tmp_path, "198.51.100.99").predict(None, False, api_name="/arena_next")


def test_sign_in_without_the_oauth_extra_is_a_notice_not_a_crash(monkeypatch, tmp_path: Path) -> None:
    import importlib.util

    import gradio as gr

    config = save_tiny_models(tmp_path / "models", ["pix2pix_tiny", "unet_tiny"])
    app = load_app(monkeypatch, tmp_path, config, COLORLAB_SIGNIN="1")
    texts = [block.value for block in app.demo.blocks.values() if isinstance(block, gr.Markdown)]
    logins = [block for block in app.demo.blocks.values() if isinstance(block, gr.LoginButton)]
    if importlib.util.find_spec("itsdangerous") is None:  # this environment: gradio[oauth] is not installed
        assert any("Sign-in is switched on but unavailable" in str(text) for text in texts) and not logins
    else:
        assert len(logins) == 1
    app.CONTEXT.store.close()
