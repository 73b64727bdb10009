"""mongodump archive / .bson splitting and Extended JSON lines (pure Python)."""

from __future__ import annotations

import gzip
import itertools
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


# ------------------------------------------------------------------------------------------------
# byte ranges of big files (sources/bson_ranges.py)

RANGE_DOCS = [{"_id": i, "pad": "p" * (i * 37 % 900)} for i in range(1200)]


def _write_dump(tmp_path, kind: str):  # -> path, expected (ns, _id) list in file order
    plain = b"".join(bson.encode(d) for d in RANGE_DOCS)
    expected = [("shop.orders", d["_id"]) for d in RANGE_DOCS]
    if kind.startswith("archive"):
        blocks = [
            ("shop.a", RANGE_DOCS[:500]),
            ("shop.b", RANGE_DOCS[500:501]),
            ("shop.a", RANGE_DOCS[501:]),
        ]
        plain = archive(blocks)
        expected = [(ns, d["_id"]) for ns, docs in blocks for d in docs]
    path = tmp_path / "shop" / ("orders.bson" if kind.startswith("bson") else "dump.archive")
    path.parent.mkdir()
    if kind.endswith(".gz"):
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(plain))
    else:
        path.write_bytes(plain)
    return path, expected


@pytest.mark.parametrize(
    ("kind", "split", "min_ranges"),
    [
        ("bson", 64 << 10, 8),  # ~600 KB of documents in 64 KB ranges
        ("bson", 1, 1200),  # every document its own range
        ("bson", 1 << 30, 1),
        ("archive", 64 << 10, 8),  # ranges start inside blocks and at headers
        ("archive", 1, 1200),
        ("archive.gz", 64 << 10, 1),  # gzip: one streamed range
        ("bson.gz", 64 << 10, 1),
    ],
)
def test_byte_ranges_read_every_document_exactly_once(
    tmp_path, kind: str, split: int, min_ranges: int
) -> None:
    from lakeshift.sources.bson_ranges import plan_ranges, read_range

    path, expected = _write_dump(tmp_path, kind)
    ranges = plan_ranges(f"file:{path}", split, "shop.orders")
    assert len(ranges) >= min_ranges
    assert ranges[0].start < 1000 and ranges[-1].end == path.stat().st_size
    assert all(a.end == b.start for a, b in itertools.pairwise(ranges))
    got = [(ns, bson.decode(raw)["_id"]) for r in ranges for ns, raw in read_range(r)]
    assert got == expected  # in file order, none twice, none lost


@pytest.mark.parametrize("cut", [3, 50])
def test_byte_ranges_of_a_truncated_file_raise(tmp_path, cut: int) -> None:
    from lakeshift.sources.bson_ranges import plan_ranges

    path = tmp_path / "t.bson"
    path.write_bytes(b"".join(bson.encode(d) for d in RANGE_DOCS[:10])[:-cut])
    with pytest.raises(SourceError, match=r"t\.bson"):
        plan_ranges(str(path), 1 << 20, "x.t")


def test_fields_mode_type_markers_keep_null_apart_from_missing() -> None:
    import pyarrow as pa

    from lakeshift.sources.mongo import _fields_to_bson, type_markers

    fields = ["a", "b.c", "$x", "n"]
    markers = type_markers(fields)
    assert markers == {
        "__lakeshift_type_0": {"$type": "$a"},
        "__lakeshift_type_3": {"$type": "$n"},
    }  # no marker for names that are not plain $field paths
    batch = pa.RecordBatch.from_pydict(
        {
            "a": [None, None, '{"$numberInt": "5"}'],
            "b.c": [None, "t", None],
            "$x": [None, None, None],
            "n": ['{"k": null}', None, None],
            "__lakeshift_type_0": ["null", "missing", "int"],
            "__lakeshift_type_3": ["object", "null", "missing"],
        }
    )
    out = next(_fields_to_bson(fields, "db.c", markers)(iter([batch])))
    docs = [bson.decode(d) for d in out.column("doc").to_pylist()]
    assert docs == [{"a": None, "n": {"k": None}}, {"b.c": "t", "n": None}, {"a": 5}]
    assert out.column("ns").to_pylist() == ["db.c"] * 3
