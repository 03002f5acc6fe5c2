"""Finding 6: behind a proxy the rate limit counted the left-most X-Forwarded-For entry, which
the client writes, so a flood that changed it every request was never limited; and the limiter
never forgot a client, scanning all of them on every request past 10,000."""

from __future__ import annotations

import re
import time
import warnings
from pathlib import Path

import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette 1.x asks for httpx2 in its TestClient
    from starlette.testclient import TestClient

from syndicate.runtime import Runtime
from syndicate.web.app import create_app
from syndicate.web.guard import RateLimiter, client_address, limiter_key
from tests.support.cli import run_cli
from tests.support.project import set_setting
from tests.support.web_client import load_settings


@pytest.fixture
def web(project: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SYNDICATE_SECRET_KEY", "trust-web-proxies-key-at-least-32-bytes-long")
    set_setting(project / "settings.toml", "rate_limit = 5", "rate_limit = 3")
    return project


class Proxied:
    """One app (one limiter) reached through the same connection (the proxy) for every post."""

    def __init__(self, project: Path) -> None:
        app = create_app(Runtime(load_settings(project)))
        self.client = TestClient(app, base_url="https://notes.example.com")
        page = self.client.get("/subscribe").text
        self.csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
        self.posted = 0

    def flood(self, forwarded_for: list[str]) -> list[int]:
        """One sign-up per X-Forwarded-For value."""
        statuses = []
        for value in forwarded_for:
            self.posted += 1
            statuses.append(
                self.client.post(
                    "/subscribe",
                    data={"csrf": self.csrf, "email": f"flood{self.posted}@example.com"},
                    headers={"X-Forwarded-For": value},
                ).status_code
            )
        return statuses


def test_a_client_cannot_escape_the_limit_by_writing_x_forwarded_for(web: Path) -> None:
    set_setting(web / "settings.toml", "trusted_proxies = 0", "trusted_proxies = 1")
    proxy = Proxied(web)
    # Our one proxy appends the real client (203.0.113.9); the client invents the rest.
    spoofed = [f"10.0.{n}.{n}, 203.0.113.9" for n in range(6)]
    assert proxy.flood(spoofed) == [200, 200, 200, 429, 429, 429]
    # Another real client behind the same proxy, on the same app, is not limited by the flood
    # (a limiter keyed on the proxy's own address would refuse it).
    assert proxy.flood(["10.0.0.0, 198.51.100.7"]) == [200]
    assert proxy.flood(["203.0.113.9"]) == [429]


def test_two_proxies_are_two_hops_from_the_right(web: Path) -> None:
    set_setting(web / "settings.toml", "trusted_proxies = 0", "trusted_proxies = 2")
    proxy = Proxied(web)
    # client-written, the real client (seen by the outer proxy), the outer proxy (seen by ours)
    spoofed = [f"10.9.{n}.1, 203.0.113.9, 192.0.2.10" for n in range(5)]
    assert proxy.flood(spoofed) == [200, 200, 200, 429, 429]
    # Another real client behind the same outer proxy is its own bucket; so is the outer proxy
    # when it is not the second hop (one hop counted would key on 192.0.2.10 for everyone).
    assert proxy.flood(["10.9.0.1, 198.51.100.7, 192.0.2.10"]) == [200]


def test_without_trusted_proxies_the_header_is_ignored(web: Path) -> None:
    proxy = Proxied(web)
    assert proxy.flood([f"10.1.{n}.1" for n in range(5)]) == [200, 200, 200, 429, 429]
    # The header is the client's own invention: a new value does not make a new client.
    assert proxy.flood(["198.51.100.7"]) == [429]


def test_client_address_by_hop_count() -> None:
    assert client_address("192.0.2.1", "6.6.6.6, 203.0.113.9", 0) == "192.0.2.1"
    assert client_address("192.0.2.1", "6.6.6.6, 203.0.113.9", 1) == "203.0.113.9"
    assert client_address("192.0.2.1", "6.6.6.6, 203.0.113.9, 192.0.2.7", 2) == "203.0.113.9"
    # Fewer entries than proxies: the one our nearest proxy wrote, never one further left.
    assert client_address("192.0.2.1", "203.0.113.9", 3) == "203.0.113.9"
    assert client_address("192.0.2.1", "", 1) == "192.0.2.1"


def test_the_old_trust_forwarded_for_setting_is_refused_with_a_pointer(web: Path) -> None:
    config = web / "settings.toml"
    set_setting(config, "trusted_proxies = 0", "trust_forwarded_for = true")
    result = run_cli(web, "serve", "--port", "1")
    assert result.returncode != 0
    assert "web.trust_forwarded_for" in result.stderr and "trusted_proxies" in result.stderr
    assert "Traceback" not in result.stderr
    set_setting(config, "trust_forwarded_for = true", "trust_forwarded_for = false")
    assert load_settings(web).web.trusted_proxies == 0  # `false` trusted nothing: still fine


def test_the_limiter_forgets_idle_clients_and_keeps_at_most_max_keys() -> None:
    now = [0.0]
    limiter = RateLimiter(limit=2, window=60, max_keys=1000, clock=lambda: now[0])
    for n in range(5000):
        limiter.allow(f"client{n}")
    assert len(limiter) == 1000
    now[0] = 61.0
    assert limiter.allow("late") == (True, 0)
    assert len(limiter) == 1


def test_a_flooding_client_stays_limited_while_strangers_pass() -> None:
    limiter = RateLimiter(limit=3, window=600, max_keys=1000)
    assert [limiter.allow("flooder")[0] for _ in range(4)] == [True, True, True, False]
    for n in range(5000):
        assert limiter.allow(f"stranger{n}")[0]
        assert limiter.allow("flooder")[0] is False


def test_each_request_costs_the_same_however_many_clients_are_known() -> None:
    limiter = RateLimiter(limit=5, window=600, max_keys=10_000)
    for n in range(10_001):
        limiter.allow(f"203.0.{n // 256}.{n % 256}")
    started = time.perf_counter()
    for n in range(5000):
        limiter.allow(f"198.51.{n // 256}.{n % 256}")
    # ~20 ms here; scanning 10,000 clients per request took seconds.
    assert time.perf_counter() - started < 1.0
    assert len(limiter) == 10_000


def test_ipv6_clients_are_limited_by_their_64() -> None:
    assert limiter_key("2001:db8:1:2::1") == limiter_key("2001:db8:1:2:ffff::9")
    assert limiter_key("2001:db8:1:2::1") != limiter_key("2001:db8:1:3::1")


def test_ipv4_mapped_addresses_are_limited_as_the_ipv4_address() -> None:
    """A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; before, all of them fell in
    one bucket ('::/64'), so one client's flood limited every IPv4 visitor."""
    assert limiter_key("::ffff:203.0.113.9") == "203.0.113.9"
    assert limiter_key("::ffff:203.0.113.9") != limiter_key("::ffff:198.51.100.7")
    assert limiter_key("203.0.113.9") == "203.0.113.9"
    assert limiter_key("not an address") == "not an address"
