"""Identifier rules: sanitise, cut to the target limit with a stable hash, no collisions."""

from __future__ import annotations

import hashlib

import pytest

from lakeshift.nosql.naming import NameAllocator, sanitise


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("customer.email", "customer_email"),
        ("price$", "price_"),
        ("a b-c", "a_b_c"),
        ("größe", "größe"),
        ("emoji😀x", "emoji_x"),  # outside the BMP: MySQL rejects it in identifiers
        ("", "_"),
    ],
)
def test_sanitise(raw: str, expected: str) -> None:
    assert sanitise(raw) == expected


def test_long_names_are_cut_to_63_bytes_with_a_stable_hash_of_the_path() -> None:
    path = "f" * 64
    name = NameAllocator().allocate(path)
    suffix = hashlib.sha1(path.encode()).hexdigest()[:8]
    assert name == "f" * 54 + "_" + suffix
    assert len(name.encode()) == 63
    assert NameAllocator().allocate(path) == name  # stable across runs


def test_64_character_names_that_collide_after_truncation_get_different_names() -> None:
    names = NameAllocator()
    a = names.allocate("x" * 63 + "a")
    b = names.allocate("x" * 63 + "b")
    assert a != b
    assert len(a.encode()) <= 63 and len(b.encode()) <= 63
    assert a[:54] == b[:54] == "x" * 54


def test_multibyte_names_are_cut_at_a_character_boundary() -> None:
    name = NameAllocator().allocate("é" * 40)  # 80 bytes
    assert len(name.encode("utf-8")) <= 63
    name.encode("utf-8").decode("utf-8")  # still valid UTF-8


def test_collisions_after_flattening_are_resolved_case_insensitively() -> None:
    names = NameAllocator()
    first = names.allocate("a.b")
    second = names.allocate("a_b")
    third = names.allocate("A_B")
    assert first == "a_b"
    assert len({first.lower(), second.lower(), third.lower()}) == 3
    assert second.startswith("a_b_") and third.startswith("A_B_")
