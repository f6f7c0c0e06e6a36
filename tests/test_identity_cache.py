"""`IdentityCache`: one computation per object, found by identity, bounded."""

from __future__ import annotations

from otel_agents.identity_cache import IdentityCache


def test_one_computation_per_object_and_equal_objects_kept_apart() -> None:
    computed: list[object] = []

    def compute(obj: list[int]) -> int:
        computed.append(obj)
        return len(computed)

    cache: IdentityCache[list[int], int] = IdentityCache(compute, limit=8)
    first, twin = [1], [1]  # equal, unhashable, not the same object
    assert cache.get(first) == 1
    assert cache.get(first) == 1
    assert cache.get(twin) == 2
    assert computed == [first, twin] and computed[0] is first


def test_past_the_limit_it_starts_over() -> None:
    cache: IdentityCache[object, int] = IdentityCache(lambda obj: id(obj), limit=3)
    objects = [object() for _ in range(10)]
    for obj in objects:
        assert cache.get(obj) == id(obj)
    assert len(cache._entries) <= 3
