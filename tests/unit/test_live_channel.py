"""A live channel: numbered items that any number of readers follow at their own pace."""

from __future__ import annotations

import threading
import time

from yardmaster.api.live.channel import Channel, Restored


def test_a_reader_gets_every_item_after_its_position_in_order() -> None:
    channel: Channel[str] = Channel("c")
    channel.append("a")
    start = channel.position
    channel.append("b")
    channel.append("c")

    read = channel.read(start, timeout=0)

    assert read.items == ["b", "c"]
    assert read.position == 3
    assert not read.lagged


def test_readers_at_different_positions_each_get_their_own_items() -> None:
    channel: Channel[int] = Channel("c")
    first = channel.position
    channel.append(1)
    second = channel.position
    channel.append(2)

    assert channel.read(first, timeout=0).items == [1, 2]
    assert channel.read(second, timeout=0).items == [2]


def test_a_reader_with_nothing_new_waits_until_an_item_arrives() -> None:
    channel: Channel[str] = Channel("c")
    threading.Timer(0.1, channel.append, args=("late",)).start()

    began = time.monotonic()
    read = channel.read(channel.position, timeout=5)

    assert read.items == ["late"]
    assert time.monotonic() - began < 4


def test_a_reader_with_nothing_new_gets_nothing_after_its_timeout() -> None:
    channel: Channel[str] = Channel("c")

    read = channel.read(channel.position, timeout=0.05)

    assert read.items == []
    assert read.position == 0


def test_a_reader_further_behind_than_the_channel_keeps_is_told_it_lagged() -> None:
    channel: Channel[int] = Channel("c", size=4)
    for n in range(10):
        channel.append(n)

    read = channel.read(0, timeout=0)

    assert read.lagged
    assert read.items == []
    assert read.position == 10  # it goes on from the newest item
    assert channel.read(6, timeout=0).items == [6, 7, 8, 9]


def test_closing_wakes_every_waiting_reader_and_says_so() -> None:
    channel: Channel[str] = Channel("c")
    threading.Timer(0.1, channel.close).start()

    read = channel.read(channel.position, timeout=5)

    assert read.closed


def test_a_restore_computes_its_shared_picture_once_for_every_stream() -> None:
    restored = Restored(since=1.0)
    calls: list[int] = []

    first = restored.once("jobs", lambda: calls.append(1) or "picture")
    second = restored.once("jobs", lambda: calls.append(2) or "other")

    assert first == second == "picture"
    assert calls == [1]
