"""The drain report of bench.reservations: when each of the saga's stages stopped growing."""

from bench.saga_backlog import BacklogSample, Drain, StagePeak


def drain(feed: list[int], queue: list[int]) -> Drain:
    samples = [
        BacklogSample(
            float(second), unconfirmed=1000 - second, stages={"feed f": f, "queue q": q, "q2": 40}
        )
        for second, (f, q) in enumerate(zip(feed, queue, strict=True))
    ]
    return Drain(samples, drained_after=None)


def test_each_stage_peaks_on_its_own_and_one_under_5_percent_of_the_sagas_is_no_backlog() -> None:
    report = drain(feed=[900, 600, 300, 0, 0], queue=[50, 200, 400, 300, 100])
    assert report.peaks() == [StagePeak("feed f", 900, 0.0), StagePeak("queue q", 400, 2.0)]
    assert report.lines()[1] == (
        "largest backlog of each stage (changes behind on a feed, messages on a queue):"
        " feed f 900 at 0 s, queue q 400 at 2 s"
    )
    assert (
        report.lines()[2] == "the last stage to stop growing: queue q, 2 s after the load stopped"
    )


def test_stages_that_only_shrink_are_reported_as_such() -> None:
    report = drain(feed=[900, 600, 0], queue=[400, 300, 10])
    assert report.lines()[2] == "every stage shrank from the moment the load stopped"


def test_the_samples_shown_are_those_nearest_the_listed_times_each_once() -> None:
    report = drain(feed=list(range(12, 0, -1)), queue=[0] * 12)
    assert report.lines()[0] == (
        "sagas not yet Confirmed after the load stopped:"
        " 0 s 1000, 1 s 999, 2 s 998, 3 s 997, 5 s 995, 10 s 990"
    )
