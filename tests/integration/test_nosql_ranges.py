"""mongodump files above ``split_bytes`` are read by byte ranges in several tasks (pyarrow.fs).

The expectation is an independent slicing of the same bytes in this test (gzip + struct): the
multiset of ``(namespace, raw document bytes)`` must be identical, so every document is read
exactly once and byte for byte.
"""

from __future__ import annotations

import gzip
import struct
from collections import Counter
from pathlib import Path

import bson
import pytest

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "datasets" / "mongodb-samples"
WEATHER = SAMPLES / "sample_weatherdata.gz"

pytestmark = pytest.mark.skipif(not WEATHER.is_file(), reason=f"{WEATHER} not found")


def raw_archive_documents(data: bytes) -> list[tuple[str, bytes]]:
    """Independent: magic, prelude, metadata to the first terminator, then blocks."""
    assert data[:4] == b"\x6d\xe2\x99\x81"
    pos = 4 + struct.unpack_from("<i", data, 4)[0]
    while struct.unpack_from("<i", data, pos)[0] != -1:
        pos += struct.unpack_from("<i", data, pos)[0]
    pos += 4
    out, ns = [], None
    while pos < len(data):
        (n,) = struct.unpack_from("<i", data, pos)
        if n == -1:
            ns, pos = None, pos + 4
            continue
        if ns is None:
            header = bson.decode(data[pos : pos + n])
            ns = "" if header.get("EOF") else f"{header['db']}.{header['collection']}"
        elif ns:
            out.append((ns, data[pos : pos + n]))
        pos += n
    return out


def test_big_files_are_split_into_byte_ranges(spark, tmp_path) -> None:
    from lakeshift.sources.bson_ranges import plan_ranges
    from lakeshift.sources.factory import from_spec

    plain = gzip.decompress(WEATHER.read_bytes())
    (tmp_path / "dump").mkdir()
    big = tmp_path / "dump" / "weather.archive"
    big.write_bytes(plain)
    small_docs = [{"_id": i, "v": f"x{i}"} for i in range(50)]
    (tmp_path / "dump" / "shop").mkdir()
    small = tmp_path / "dump" / "shop" / "orders.bson"
    small.write_bytes(b"".join(bson.encode(d) for d in small_docs))
    expected = Counter(raw_archive_documents(plain))
    expected.update(("shop.orders", bson.encode(d)) for d in small_docs)

    split = 512 << 10
    assert small.stat().st_size < split < big.stat().st_size
    ranges = plan_ranges(f"file:{big}", split, "unused")
    assert len(ranges) >= 4, "the test file must span several ranges"

    docs = from_spec(f"mongodump:{tmp_path}/dump", {"split_bytes": str(split)}).read(spark)
    got = Counter((r["ns"], bytes(r["doc"])) for r in docs.collect())  # ~10 k small rows
    assert sum(got.values()) == sum(expected.values()) == 10_050
    assert got == expected
