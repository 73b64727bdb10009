"""Bad targets and error messages of ``lakeshift files`` on real paths (and SeaweedFS's S3).

Every bad target must end in one line on stderr, ``lakeshift files: error: <what>: <where>``,
exit code 2, and nothing written anywhere (checked by snapshotting the whole test folder).
Per-file failures are reported in words (``not a directory: DST/sub``), exit 1, and every
other file is still copied.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lakeshift import cli
from tests.integration.files_tree import make_tree, sha_tree
from tests.s3_server import s3_server  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
# as root, but without the capabilities that bypass file permissions (chmod 000 then bites)
NO_DAC = ["setpriv", "--bounding-set=-all", "--inh-caps=-all", "--"]


def _snapshot(root: Path) -> dict[str, tuple[str, int]]:
    """Every path under ``root`` with its kind and size (what "nothing written" compares)."""
    out: dict[str, tuple[str, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            kind = "d" if p.is_dir() and not p.is_symlink() else "f"
            out[p.relative_to(root).as_posix()] = (kind, 0 if kind == "d" else st.st_size)
    return out


def _run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    rc = cli.main(["files", *argv, "--local", "--no-progress"])
    return rc, capsys.readouterr().err


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    line = lines[0]
    assert line.startswith("lakeshift files: error: "), line
    rest = line[len("lakeshift files: error: ") :]
    assert "lakeshift" not in rest and "error:" not in rest, line  # no doubled prefix
    assert "Value error" not in rest and "files:" not in rest, line
    assert "Traceback" not in err
    return rest


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["lakeshift.files.command"])
    monkeypatch.chdir(tmp_path)
    make_tree(tmp_path / "nest")
    return tmp_path


@pytest.mark.parametrize(
    ("src", "dst", "words"),
    [
        ("nest", "nest/sub/backup", "inside the source"),
        ("./nest", "nest/sub/backup", "inside the source"),  # the case
        ("nest/", "./nest//sub/../sub/backup", "inside the source"),
        ("nest", "alias/backup", "inside the source"),  # alias -> nest (a symlink)
        ("nest", "nest", "inside the source"),
        ("nest/a/b", "nest", "source is inside the target"),
        ("nest", "alias", "inside the source"),
        ("nest", "plain.txt", "is a file"),
        ("nest", "plain.txt/sub", "below a file"),
    ],
)
def test_bad_local_targets_exit_2_one_line_nothing_written(
    tree: Path, capsys: pytest.CaptureFixture[str], src: str, dst: str, words: str
) -> None:
    (tree / "alias").symlink_to("nest")
    (tree / "plain.txt").write_bytes(b"a plain file")
    before = _snapshot(tree)

    rc, err = _run_cli([src, dst], capsys)

    rest = _one_error_line(err)
    assert rc == 2
    assert words in rest, rest
    assert _snapshot(tree) == before


def test_rerun_of_nested_target_never_copies_into_itself(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _snapshot(tree)
    for _ in range(2):
        rc, err = _run_cli(["./nest", "nest/sub/backup"], capsys)
        assert rc == 2, err
    assert _snapshot(tree) == before
    assert not (tree / "nest/sub").exists()


def test_unwritable_target_exit_2_nothing_written(tmp_path: Path) -> None:
    src = tmp_path / "src"
    make_tree(src)
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    (tmp_path / "ro_existing").mkdir()
    (tmp_path / "ro_existing").chmod(0o555)
    before = _snapshot(tmp_path)
    try:
        cases = [
            [str(ro / "new/deeper")],
            [str(tmp_path / "ro_existing")],
            [str(tmp_path / "fine"), "--state", str(ro / "state")],  # only the state is not
        ]
        for dst in cases:
            argv = [sys.executable, "-m", "lakeshift.cli", "files", str(src), *dst]
            out = subprocess.run(
                [*NO_DAC, *argv, "--local", "--no-progress"],
                cwd=REPO,
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
            rest = _one_error_line(out.stderr)
            assert out.returncode == 2, out.stderr
            assert "not writable" in rest, rest
        assert _snapshot(tmp_path) == before
    finally:
        ro.chmod(0o755)
        (tmp_path / "ro_existing").chmod(0o755)


def test_bad_s3_targets_exit_2(
    tmp_path: Path, s3_server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:

    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(cli, "COMMAND_MODULES", ["lakeshift.files.command"])
    s3 = s3_server.client()
    s3.create_bucket(Bucket="badtargets")
    s3.put_object(Bucket="badtargets", Key="data/in/x.txt", Body=b"x")
    s3.put_object(Bucket="badtargets", Key="a/file", Body=b"an object, not a folder")
    src = tmp_path / "src"
    make_tree(src)

    def keys() -> list[str]:
        listed = s3.list_objects_v2(Bucket="badtargets").get("Contents", [])
        return sorted(o["Key"] for o in listed)

    before = keys()
    cases = [
        (["s3://badtargets/data", "s3a://badtargets/data/in/copy"], "inside the source"),
        (["s3://badtargets/data/in", "s3://badtargets//data/"], "source is inside the target"),
        ([str(src), "s3://badtargets/a/file"], "is a file"),
        ([str(src), "s3://no-such-bucket-here/x"], "no such bucket"),
    ]
    for argv, words in cases:
        rc, err = _run_cli(argv, capsys)
        rest = _one_error_line(err)
        assert rc == 2, err
        assert words in rest, rest
    assert keys() == before


def test_config_errors_are_one_clean_line(tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, err = _run_cli(["nest", "s3://bucket/x", "--part-size", "1MB"], capsys)
    assert rc == 2
    rest = _one_error_line(err)
    assert "5 MiB" in rest and "--part-size" in rest, rest

    rc, err = _run_cli(["missing", "out"], capsys)
    assert rc == 2
    rest = _one_error_line(err)
    assert rest.startswith("source folder not found: "), rest
    assert not (tree / "out").exists()


def test_per_file_failure_in_words_everything_else_copied(
    tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    src, dst = tree / "nest", tree / "dst"
    (src / "sub/deeper").mkdir(parents=True)
    (src / "sub/deeper/x.txt").write_bytes(b"x")
    dst.mkdir()
    (dst / "sub").write_bytes(b"a file where the source has a folder")
    out = tree / "s.json"

    rc = cli.main(["files", str(src), str(dst), "--local", "--no-progress", "--json", str(out)])

    assert rc == 1
    summary = json.loads(out.read_text())
    assert summary["failed_files"] == [
        {"path": "sub/deeper/x.txt", "reason": "not a directory: DST/sub"}
    ]
    assert "FAILED sub/deeper/x.txt: not a directory: DST/sub" in capsys.readouterr().out
    copied = sha_tree(dst)
    expected = sha_tree(src)
    expected.pop("sub/deeper/x.txt")
    copied.pop("sub")
    assert copied == expected
