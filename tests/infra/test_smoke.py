"""The deployment's smoke test waits through the rollout: old build, new build not ready, ready."""

from __future__ import annotations

from infra.scripts.smoke import smoke_test


def test_the_smoke_test_waits_for_the_new_build_then_for_its_readiness() -> None:
    answers = iter(
        [
            (200, {"status": "ok", "build": "41"}),
            (0, {}),
            (200, {"status": "ok", "build": "42"}),
            (503, {"status": "not-ready", "build": "42"}),
            (200, {"status": "ready", "build": "42"}),
        ]
    )
    asked: list[str] = []
    slept: list[float] = []

    def probe(url: str) -> tuple[int, dict[str, object]]:
        asked.append(url.removeprefix("https://apim.example/api"))
        return next(answers)

    ok = smoke_test(
        "https://apim.example/", "42", attempts=5, interval=7, probe=probe, sleep=slept.append
    )
    assert ok
    assert asked == ["/health", "/health", "/health", "/health/ready", "/health/ready"]
    assert slept == [7, 7, 7]


def test_readiness_of_an_older_build_does_not_count() -> None:
    answers = iter([(200, {"build": "42"}), (200, {"status": "ready", "build": "41"})])
    ok = smoke_test(
        "https://apim.example",
        "42",
        attempts=1,
        interval=0,
        probe=lambda _url: next(answers),
        sleep=lambda _s: None,
        say=lambda _m: None,
    )
    assert not ok
