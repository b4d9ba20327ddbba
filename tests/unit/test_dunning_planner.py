"""Dunning's pure planner, driven through whole schedules: whatever the cards answer and
however the schedule and the cap are set, attempts never exceed the schedule, a retry never
takes a method past the card network cap, and a hard decline is never retried on its
method (Hypothesis)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from paygrid.domain.billing_settings import DunningSettings
from paygrid.domain.dunning import (
    Decision,
    DeclineClass,
    DunningState,
    after_action_expired,
    after_failure,
    after_skip,
    cap_window,
    may_charge,
    within_cap,
)

T0 = datetime(2030, 1, 1, tzinfo=UTC)
SUCCESS = "succeeded"
Outcome = DeclineClass | str


@dataclass
class Run:
    """What a driven schedule did."""

    attempts: list[tuple[datetime, str, Outcome]] = field(default_factory=list)
    skips: int = 0
    exhausted: bool = False
    steps: int = 0


def drive(
    settings: DunningSettings,
    outcomes: list[Outcome],
    methods: list[str],
    earlier: dict[str, list[datetime]],
) -> Run:
    """An invoice's first attempt on ``methods[0]`` at T0, then its retries as the planner
    decides, each answered by the next outcome (success once they run out)."""
    run, made = Run(), {m: list(earlier.get(m, [])) for m in methods}
    answers = iter(outcomes)

    def attempt(at: datetime, method: str) -> Outcome:
        outcome = next(answers, SUCCESS)
        run.attempts.append((at, method, outcome))
        made[method].append(at)
        return outcome

    def failed(at: datetime, method: str, outcome: Outcome, state: DunningState) -> Decision:
        assert isinstance(outcome, DeclineClass)
        others = [m for m in reversed(methods) if m != method]
        return after_failure(
            settings, state, failed_at=at, decline=outcome, method=method, other_methods=others
        )

    now, outcome = T0, attempt(T0, methods[0])
    if outcome == SUCCESS:
        return run
    decision = failed(now, methods[0], outcome, DunningState())
    for _ in range(1000):
        run.steps = decision.state.position
        if decision.exhausted:
            run.exhausted = True
            return run
        if decision.action_expires_at is not None:
            expired = decision.action_expires_at
            decision = after_action_expired(
                settings, decision.state, failed_at=now, expired_at=expired
            )
            now = expired
            continue
        if decision.next_attempt_at is None:
            return run
        assert decision.next_attempt_at >= now, "the schedule never goes back in time"
        now, state = decision.next_attempt_at, decision.state
        method = state.pinned_method or methods[0]
        recent = [t for t in made[method] if now - cap_window(settings) < t <= now]
        if not may_charge(settings, state, method) or not within_cap(settings, len(recent)):
            run.skips += 1
            decision = after_skip(settings, state, at=now)
            continue
        assert len(recent) < settings.max_attempts_per_method
        outcome = attempt(now, method)
        if outcome == SUCCESS:
            return run
        decision = failed(now, method, outcome, state)
    raise AssertionError("the schedule never ended")


outcomes = st.lists(st.sampled_from([*DeclineClass, SUCCESS]), min_size=1, max_size=12)
dunning_settings = st.builds(
    DunningSettings,
    # as the settings require: strictly increasing whole days
    retry_schedule_days=st.lists(st.integers(1, 60), max_size=8, unique=True).map(
        lambda days: tuple(sorted(days))
    ),
    stop_on_hard_decline=st.booleans(),
    fallback_to_other_methods=st.booleans(),
    max_attempts_per_method=st.integers(1, 6),
    attempt_window_days=st.integers(1, 30),
    action_expiry_hours=st.integers(1, 96),
)


@given(
    dunning_settings,
    outcomes,
    st.integers(1, 3),
    st.lists(st.integers(0, 40 * 24), max_size=20),
)
def test_attempts_never_exceed_the_schedule_or_the_cap(
    settings: DunningSettings, answers: list[Outcome], count: int, earlier_hours: list[int]
) -> None:
    methods = [f"pm_{i}" for i in range(count)]
    earlier = {"pm_0": [T0 - timedelta(hours=h) for h in earlier_hours]}
    run = drive(settings, answers, methods, earlier)
    days = settings.retry_schedule_days
    retries = len(run.attempts) - 1
    assert retries + run.skips <= len(days), "every retry or skip takes a step"
    assert run.steps <= len(days)
    blocked: set[str] = set()
    for at, method, outcome in run.attempts:
        if settings.stop_on_hard_decline:
            assert method not in blocked, "a hard decline is never retried on its method"
        if outcome is DeclineClass.HARD:
            blocked.add(method)
        del at
    if not settings.fallback_to_other_methods:
        assert {method for _, method, _ in run.attempts} == {"pm_0"}


@given(dunning_settings)
def test_soft_declines_follow_the_schedule_days(settings: DunningSettings) -> None:
    days = settings.retry_schedule_days
    run = drive(settings, [DeclineClass.SOFT] * 20, ["pm_0"], {})
    times = [at for at, _, _ in run.attempts]
    # with no cap in the way (a long enough window is still fine: count the skips)
    if run.skips == 0:
        # the days count from the first failure
        assert times == [T0] + [T0 + timedelta(days=day) for day in days]
        assert run.exhausted
