"""What every layer shares (`harness.system`): the one LRU cache (bounded, least recently used forgotten,
safe to share between the threads of the image evidence), the decoded pack images and the registries."""
from __future__ import annotations

import random
import sys
import threading
import time

import pytest

from harness.system.lru import LRU

KEYS = 30
SIZE = 24
THREADS = 4


def test_the_least_recently_used_entry_is_forgotten():
    lru = LRU(2)
    assert [lru.get(k, lambda k=k: k * 10) for k in (1, 2, 1, 3)] == [10, 20, 10, 30]
    assert lru.get(2, lambda: "remade") == "remade" and len(lru) == 2
    assert lru.get(1, lambda: "remade") == "remade"  # 1 went when 2 came back
    with pytest.raises(ValueError, match="at least one entry"):
        LRU(0)


def test_threads_on_more_keys_than_it_holds_never_fail():
    """Threads asking for 30 keys at random through 24 places, switching every microsecond: a cache without
    a lock raises KeyError (one thread evicts the key another has just found), here within a second."""
    lru, errors, wrong = LRU(SIZE), [], []
    stop = time.monotonic() + 1.5

    def hammer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            while time.monotonic() < stop and not errors:
                key = rng.randrange(KEYS)
                if lru.get(key, lambda key=key: ("value", key)) != ("value", key):
                    wrong.append(key)
        except Exception as exc:  # noqa: BLE001 - any failure of the cache is the finding
            errors.append(exc)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=hammer, args=(seed,)) for seed in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors and not wrong, (errors[:1], wrong[:5])
    assert len(lru) == SIZE


def test_a_slow_make_holds_up_no_other_key_and_one_value_is_kept():
    lru, release, started = LRU(4), threading.Event(), threading.Event()
    got = {}

    def slow() -> str:
        started.set()
        assert release.wait(5)
        return "slow"

    worker = threading.Thread(target=lambda: got.setdefault("a", lru.get("a", slow)))
    worker.start()
    assert started.wait(5)
    began = time.monotonic()
    assert lru.get("b", lambda: "fast") == "fast" and time.monotonic() - began < 1  # not waiting for "a"
    assert lru.get("a", lambda: "first") == "first"  # the same missing key made twice: the first stored wins
    release.set()
    worker.join(5)
    assert got["a"] == "first" and lru.get("a", lambda: "again") == "first"


def test_decoded_images_are_shared_read_only_and_decoded_again_when_the_file_changes(tmp_path):
    import os

    import cv2
    import numpy as np

    from harness.system.images import decoded_image
    path = tmp_path / "1.jpg"
    cv2.imwrite(str(path), np.full((8, 8, 3), 40, np.uint8))
    first = decoded_image(path)
    assert decoded_image(tmp_path / "." / "1.jpg") is first  # one decode for every reader of the file
    assert not first.flags.writeable
    cv2.imwrite(str(path), np.full((8, 8, 3), 200, np.uint8))
    os.utime(path, ns=(first_ns := path.stat().st_mtime_ns + 10**9, first_ns))
    again = decoded_image(path)
    assert again is not first and abs(int(again[0, 0, 0]) - 200) <= 2


def test_a_registry_keeps_the_registration_order_and_refuses_a_name_twice():
    from harness.system.registry import Registry
    table = Registry("{name!r} twice ({first} and {second})")

    @table.registers("b")
    def first():
        pass

    @table.registers("a")
    def second():
        pass

    assert list(table) == ["b", "a"] and table["a"] is second
    with pytest.raises(ValueError, match=r"'b' twice \(first and third\)"):
        @table.registers("b")
        def third():
            pass
