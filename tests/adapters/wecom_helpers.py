"""Shared helpers for the WeCom adapter tests (a plain module: no conftest under tests/ subfolders)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from siyu.adapters.wecom.client import TokenCache, WeComClient
from siyu.adapters.wecom.fake_server import FakeWeCom


class FakeClock:
    """Monotonic seconds that only move when a test (or the fake sleep) moves them."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextmanager
def fake_wecom(
    clock: FakeClock | None = None, **client_kwargs: object
) -> Iterator[tuple[FakeWeCom, WeComClient, FakeClock]]:
    """A started fake WeCom server and a client of it sharing one fake clock and a private token cache."""
    clock = clock or FakeClock()
    with FakeWeCom(clock=clock) as fake:
        client = WeComClient(
            fake.corp_id,
            fake.secret,
            base_url=fake.url,
            clock=clock,
            sleep=clock.sleep,
            token_cache=TokenCache(),
            **client_kwargs,  # type: ignore[arg-type]
        )
        try:
            yield fake, client, clock
        finally:
            client.close()
