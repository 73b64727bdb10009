"""mongodump archive / .bson splitting and Extended JSON lines (pure Python)."""

from __future__ import annotations

import gzip
import struct

import bson
import pytest

from lakeshift.errors import SourceError
from lakeshift.sources.bson_dump import (
    ARCHIVE_MAGIC,
    iter_archive,
    iter_bson_documents,
    namespace_for_bson_file,
    split_file,
)
from lakeshift.sources.extjson import line_to_bson, namespace_for_json_file

TERM = struct.pack("<i", -1)


def archive(blocks: list[tuple[str, list[dict]]]) -> bytes:
    """A mongodump archive written by hand from the documented layout."""
    out = ARCHIVE_MAGIC + bson.encode({"version": "0.1", "concurrent_collections": 1})
    for ns in dict.fromkeys(ns for ns, _ in blocks):
        db, coll = ns.split(".", 1)
        out += bson.encode(
            {"db": db, "collection": coll, "metadata": "{}", "size": 0, "type": "collection"}
        )
    out += TERM
    for ns, docs in blocks:
        db, coll = ns.split(".", 1)
        out += bson.encode({"db": db, "collection": coll, "EOF": False, "CRC": 0})
        out += b"".join(bson.encode(d) for d in docs) + TERM
    for ns in dict.fromkeys(ns for ns, _ in blocks):
        db, coll = ns.split(".", 1)
        out += bson.encode({"db": db, "collection": coll, "EOF": True, "CRC": 0}) + TERM
    return out


def test_archive_with_interleaved_collections() -> None:
    data = archive(
        [("shop.a", [{"_id": 1}, {"_id": 2}]), ("shop.b", [{"_id": "x"}]), ("shop.a", [{"_id": 3}])]
    )
    got = [(ns, bson.decode(data[o : o + n])["_id"]) for ns, o, n in iter_archive(data)]
    assert got == [("shop.a", 1), ("shop.a", 2), ("shop.b", "x"), ("shop.a", 3)]


@pytest.mark.parametrize("compress", [False, True])
def test_split_file_cuts_whole_documents_per_namespace(compress: bool) -> None:
    docs = [{"_id": i, "pad": "p" * 1000} for i in range(300)]
    data = archive([("db.c", docs), ("db.d", [{"_id": "last"}])])
    content = gzip.compress(data) if compress else data
    chunks = list(split_file("/x/dump.archive", content, chunk_bytes=64 << 10, parts=4))
    assert len(chunks) >= 3
    ids = [(ns, d["_id"]) for ns, _, blob in chunks for d in bson.decode_all(blob)]
    assert ids == [("db.c", i) for i in range(300)] + [("db.d", "last")]
    assert [c for _, c, _ in chunks] == list(range(len(chunks)))


def test_bson_folder_files() -> None:
    blob = b"".join(bson.encode({"_id": i}) for i in range(3))
    assert [n for _, n in iter_bson_documents(blob)] == [len(bson.encode({"_id": 0}))] * 3
    assert namespace_for_bson_file("/dump/shop/orders.bson.gz") == "shop.orders"
    chunks = list(split_file("/dump/shop/orders.bson", gzip.compress(blob)))
    assert [ns for ns, _, _ in chunks] == ["shop.orders"]


@pytest.mark.parametrize(
    "data",
    [
        b"nope" + b"\x00" * 10,
        ARCHIVE_MAGIC + bson.encode({"a": 1}) + TERM + struct.pack("<i", 1000) + b"xx",
    ],
)
def test_corrupt_archives_raise_source_error(data: bytes) -> None:
    with pytest.raises(SourceError):
        list(iter_archive(data, where="f.archive"))


def test_truncated_bson_raises() -> None:
    blob = bson.encode({"_id": 1})
    with pytest.raises(SourceError, match="corrupt BSON"):
        list(iter_bson_documents(blob[:-2]))


def test_extended_json_lines_keep_exact_types() -> None:
    line = (
        '{"_id":{"$oid":"5ca4bbcea2dd94ee58162a68"},"p":{"$numberDecimal":"10.50"},'
        '"d":{"$date":{"$numberLong":"-2208988800001"}},"n":{"$numberLong":"9007199254740993"},'
        '"i":{"$numberInt":"7"},"f":{"$numberDouble":"-Infinity"}}'
    )
    doc = bson.decode(
        line_to_bson(line),
        bson.CodecOptions(datetime_conversion=bson.DatetimeConversion.DATETIME_MS),
    )
    assert str(doc["p"]) == "10.50" and isinstance(doc["p"], bson.Decimal128)
    assert int(doc["d"]) == -2208988800001  # 1899-12-31T23:59:59.999Z
    assert doc["n"] == 9007199254740993 and isinstance(doc["n"], bson.int64.Int64)
    assert doc["i"] == 7 and not isinstance(doc["i"], bson.int64.Int64)
    assert doc["f"] == float("-inf")
    relaxed = bson.decode(
        line_to_bson('{"a": 1, "b": 2.5, "d": {"$date": "2020-01-01T00:00:00.123Z"}}')
    )
    assert relaxed["a"] == 1 and relaxed["b"] == 2.5 and relaxed["d"].microsecond == 123000
    assert line_to_bson("   ") is None
    assert bson.decode(line_to_bson("{not json")) == {"$lakeshift_invalid_json": "{not json"}
    assert namespace_for_json_file("file:/d/sample_mflix/users.json") == "sample_mflix.users"
