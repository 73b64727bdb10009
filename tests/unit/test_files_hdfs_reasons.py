"""hdfs-native's errors become per-file reasons in words (texts as measured on the mini cluster)."""

from __future__ import annotations

import pytest

from lakeshift.files.reasons import describe, is_transient

DN = (
    'DatanodeInfoProto { id: DatanodeIdProto { ip_addr: \\"127.0.0.1\\", xfer_port: 43195 }, '
    "capacity: Some(541106348032), num_blocks: Some(0) }"
)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('DataTransferError("All DataNodes failed: []")', "missing block (no DataNode holds"),
        (f'DataTransferError("All DataNodes failed: [{DN}]")', "missing or corrupt block (1 Data"),
        (f'DataTransferError("All DataNodes failed: [{DN}, {DN}]")', "(2 DataNodes holding"),
        (
            'RPCError("org.apache.hadoop.security.AccessControlException", "Permission denied. '
            'user=alice is not the owner of inode=/t/b.txt\\n\\tat org.apache...")',
            "permission denied",
        ),
    ],
)
def test_hdfs_native_errors_read_as_words_on_the_source(text: str, words: str) -> None:
    reason = describe(
        RuntimeError(text), "d/f.bin", src_root="/in", dst_root="/out", hdfs_side="SRC"
    )
    assert words in reason and reason.endswith(": SRC/d/f.bin"), reason
    assert "Proto" not in reason and "RuntimeError" not in reason and "\\n" not in reason


def test_other_runtime_errors_stay_unexpected() -> None:
    reason = describe(RuntimeError("boom"), "x", src_root="/in", dst_root="/out")
    assert reason == "unexpected error (RuntimeError: boom): DST/x"
    assert is_transient(RuntimeError('DataTransferError("All DataNodes failed: []")'))
