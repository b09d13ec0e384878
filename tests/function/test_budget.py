"""The process-wide decode budget and the memory model's arithmetic (function/budget.py)."""

from __future__ import annotations

import threading
import time

import pytest

from postergenre import budget


def test_estimate_follows_the_decoded_size_and_mode():
    mib = budget.MIB
    rgb = budget.estimate("PNG", "RGB", (1000, 1000))
    assert rgb == 1000 * 1000 * 4 + 1000 * budget.ROW_BYTES + budget.FIXED_BYTES
    assert budget.estimate("PNG", "RGBA", (1000, 1000)) - budget.FIXED_BYTES > 1.9 * (rgb - budget.FIXED_BYTES)
    assert budget.estimate("WEBP", "RGBA", (1000, 1000)) > budget.estimate("PNG", "RGBA", (1000, 1000))
    assert budget.estimate("PNG", "P", (1000, 1000), transparency=True) > budget.estimate("PNG", "P", (1000, 1000))
    assert budget.estimate("PNG", "L", (1, 10_000_000)) > 10_000_000 * budget.ROW_BYTES  # rows count
    assert budget.estimate("JPEG", "RGB", (750, 1125), coefficient_bytes=150 * mib) > 150 * mib
    assert budget.decode_budget_bytes(512) == (512 - budget.BASE_MB - budget.MARGIN_MB) * mib


def _hold(decode_budget: budget.DecodeBudget, cost: int, seconds: float, started: threading.Event) -> threading.Thread:
    def run() -> None:
        with decode_budget.reserve(cost):
            started.set()
            time.sleep(seconds)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_budget_refuses_with_retry_after_when_full():
    decode_budget = budget.DecodeBudget(total=100, wait_s=0, retry_after_s=7)
    started = threading.Event()
    holder = _hold(decode_budget, 80, 0.5, started)
    started.wait()
    with pytest.raises(budget.Busy) as err:
        with decode_budget.reserve(30):
            pass
    assert (err.value.status, err.value.code, err.value.headers) == (503, "busy", {"Retry-After": "7"})
    with decode_budget.reserve(20):  # what still fits goes ahead
        assert decode_budget.in_flight == 100
    holder.join()
    assert decode_budget.in_flight == 0


def test_budget_waits_for_earlier_decodes():
    decode_budget = budget.DecodeBudget(total=100, wait_s=5, retry_after_s=1)
    started = threading.Event()
    holder = _hold(decode_budget, 80, 0.3, started)
    started.wait()
    begin = time.monotonic()
    with decode_budget.reserve(80):
        assert time.monotonic() - begin > 0.1  # it waited for the first to finish
        assert decode_budget.in_flight == 80
    holder.join()


def test_one_decode_may_use_more_than_the_budget_only_when_alone():
    # the per-image limit is enforced before reserving (imaging.plan); reserve never deadlocks
    decode_budget = budget.DecodeBudget(total=100, wait_s=0, retry_after_s=1)
    with decode_budget.reserve(150):
        assert decode_budget.in_flight == 150
