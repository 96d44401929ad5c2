import gc

from journeys.startup_heap import freeze_once


def test_the_startup_heap_is_frozen_once_per_process() -> None:
    freeze_once()  # this process may have frozen already (an earlier test advanced a journey)
    frozen = gc.get_freeze_count()
    assert frozen > 0  # the imports so far left the collector's walks
    survivor = [object() for _ in range(10)]  # allocated after the freeze: still collected normally
    assert freeze_once() is False
    assert gc.get_freeze_count() == frozen  # a second call froze nothing new
    assert survivor and gc.is_tracked(survivor)
