"""Per-file failure reasons in words: ``<what>: <where>``, with paths as ``SRC/…`` and ``DST/…``.

A copy task catches every error of one file, so that the other files are still copied; what it
records must tell a person what went wrong and where, not a Python exception's text:
``not a directory: DST/sub``, ``permission denied: SRC/a/b.bin``, ``access denied by the store:
DST/x``. :func:`is_transient` says whether retrying can help (store timeouts and throttling)
or not (permissions, a file in the way).

Example:
    >>> import errno
    >>> exc = PermissionError(errno.EACCES, "Permission denied", "/data/in/x")
    >>> describe(exc, "x", src_root="/data/in", dst_root="/data/out")
    'permission denied: SRC/x'
"""

from __future__ import annotations

import errno
import os
import re
import stat as stat_mod

from lakeshift.errors import LakeshiftError
from lakeshift.sources.fs import NotAFileError, strerror

# errors a retry cannot fix
_PERMANENT = {
    errno.EACCES,
    errno.EPERM,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.ENAMETOOLONG,
    errno.EROFS,
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EINVAL,
    errno.ELOOP,
    errno.EEXIST,
    errno.ENOTEMPTY,
    errno.EFBIG,
}
_S3_WORDS = {
    "AccessDenied": "access denied by the store",
    "AllAccessDisabled": "access denied by the store",
    "NoSuchBucket": "no such bucket",
    "NoSuchKey": "no such object",
    "NoSuchUpload": "the multipart upload is gone",
    "SlowDown": "throttled by the store (SlowDown)",
    "Throttling": "throttled by the store",
    "RequestTimeout": "timed out talking to the store",
    "BadDigest": "bytes damaged in transit (BadDigest)",
    "InvalidDigest": "bytes damaged in transit (InvalidDigest)",
    "EntityTooLarge": "object too large for the store",
    "InternalError": "the store failed (InternalError)",
    "ServiceUnavailable": "the store is unavailable",
}
_S3_PERMANENT = {"AccessDenied", "AllAccessDisabled", "NoSuchBucket", "EntityTooLarge"}


def _where(path: str | None, rel: str, src_root: str, dst_root: str) -> str:
    """``SRC/…`` or ``DST/…`` for an OS path (``DST/<rel>`` when unknown)."""
    if path:
        for root, name in ((dst_root, "DST"), (src_root, "SRC")):
            if path == root:
                return name
            if path.startswith(root.rstrip("/") + "/"):
                return f"{name}/{path[len(root.rstrip('/')) + 1 :]}"
        return path
    return f"DST/{rel}"


def _blocking_file(path: str, root: str) -> str:
    """For ``not a directory``: the first path below ``root`` on the way that is not a folder."""
    if not path.startswith(root.rstrip("/") + "/"):
        return path
    cur = root.rstrip("/")
    for part in path[len(cur) + 1 :].split("/"):
        cur = f"{cur}/{part}"
        try:
            mode = os.lstat(cur).st_mode
        except OSError:
            return path
        if not stat_mod.S_ISDIR(mode):
            return cur
    return path


def hdfs_words(exc: BaseException) -> str | None:
    """What an hdfs-native error means, in words (``None``: not one of its errors).

    hdfs-native raises ``RuntimeError`` with the Rust error's debug text. A read whose block
    no DataNode can serve ends in ``DataTransferError("All DataNodes failed: [...]")``: an
    empty list when the NameNode knows no replica, else the DataNodes that were tried; a
    deleted, truncated or checksum-failing block file all look alike there (measured on
    Hadoop 3.5's mini cluster), so the words name both.

    Example:
        >>> hdfs_words(RuntimeError('DataTransferError("All DataNodes failed: []")'))
        'missing block (no DataNode holds a replica)'
    """
    if not isinstance(exc, RuntimeError):
        return None
    text = str(exc)
    if "All DataNodes failed: []" in text:
        return "missing block (no DataNode holds a replica)"
    if "All DataNodes failed" in text:
        n = text.count("DatanodeInfoProto")
        tried = f"{n} DataNode{'s' if n != 1 else ''}" if n else "every DataNode"
        return (
            f"missing or corrupt block ({tried} holding it failed to serve it: block file gone "
            "or truncated, or checksum error)"
        )
    if text.startswith("BlocksNotFound"):
        return "missing block (no block locations)"
    if text.startswith("ChecksumError") or "checksums didn't match" in text:
        return "checksum error"
    if "AccessControlException" in text:
        return "permission denied"
    if text.startswith("FileNotFound"):
        return "no such file"
    return None


def describe(
    exc: BaseException, rel: str, *, src_root: str, dst_root: str, hdfs_side: str = "DST"
) -> str:
    """One file's failure ``exc`` in words, ``<what>: <where>`` (see the module docstring).

    Args:
        exc: what was raised while copying ``rel``.
        rel: the file's relative path.
        src_root: the source root (OS paths below it are shown as ``SRC/…``).
        dst_root: the target root (``DST/…``).
        hdfs_side: ``SRC`` or ``DST``: which side an HDFS error (see :func:`hdfs_words`) is
            named on (hdfs-native's errors carry no path).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, LakeshiftError) and isinstance(
        exc.__cause__, OSError | ClientError | BotoCoreError
    ):
        return describe(exc.__cause__, rel, src_root=src_root, dst_root=dst_root)
    if isinstance(exc, NotAFileError):
        return f"{exc.strerror}: {_where(exc.filename, rel, src_root, dst_root)}"
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        words = _S3_WORDS.get(code, f"the store refused the request ({code or 'unknown'})")
        return f"{words}: DST/{rel}"
    if isinstance(exc, BotoCoreError):
        name = type(exc).__name__
        if name in ("NoCredentialsError", "PartialCredentialsError"):
            return f"no S3 credentials here (environment, profile or role): DST/{rel}"
        words = "timed out talking to the store" if "Timeout" in name else "cannot reach the store"
        return f"{words} ({name}): DST/{rel}"
    if isinstance(exc, OSError):
        path = exc.filename if isinstance(exc.filename, str) else None
        if path is None:  # pyarrow puts the path into the message
            m = re.search(r"'([^']+)'", str(exc))
            path = m.group(1) if m else None
        if exc.errno == errno.ENOTDIR and path:
            root = dst_root if path.startswith(dst_root.rstrip("/") + "/") else src_root
            path = _blocking_file(path, root)
        if exc.errno:
            return f"{strerror(exc)}: {_where(path, rel, src_root, dst_root)}"
    if isinstance(exc, LakeshiftError):
        return " ".join(str(exc).split())[:300]
    on_hdfs = hdfs_words(exc)
    if on_hdfs:
        return f"{on_hdfs}: {hdfs_side}/{rel}"
    text = " ".join(str(exc).split())[:300]
    return f"unexpected error ({type(exc).__name__}{': ' + text if text else ''}): DST/{rel}"


def is_transient(exc: BaseException) -> bool:
    """Whether copying again may succeed (store errors, timeouts), or never will."""
    from botocore.exceptions import ClientError

    if isinstance(exc, NotAFileError):
        return False
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "")) not in _S3_PERMANENT
    if isinstance(exc, OSError) and exc.errno in _PERMANENT:
        return False
    cause = exc.__cause__
    return cause is None or cause is exc or is_transient(cause)
