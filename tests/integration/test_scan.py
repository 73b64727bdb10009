"""``lakeshift scan`` on real local trees: exact counts, change rate, resume, HTML, bad input.

Trees are built here with known sizes (big files are sparse: their size is real, their blocks
are not), so every count below is worked out by hand from the tree.
"""

from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path

import pytest

from lakeshift.cli import main as cli
from tests.cli import lakeshift

KiB, MiB, GiB = 2**10, 2**20, 2**30


def _file(path: Path, size: int, *, sparse: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        if sparse:
            f.truncate(size)
        else:
            f.write(b"x" * size)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A tree of 10 files over 3 top-level folders and the root.

    ==============  =========  ======================
    path            size       bucket
    ==============  =========  ======================
    top.txt         10 B       <1 KiB
    a/p/1..3        100 B each <1 KiB
    a/big           2 MiB      1-16 MiB
    b/edge          1024 B     1 KiB-64 KiB (lower bound)
    b/x             70 KiB     64 KiB-1 MiB
    c/d/e/h         20 MiB     16-128 MiB (sparse)
    c/d/g           2 GiB      1-10 GiB (sparse)
    c/d/tiny        1023 B     <1 KiB
    ==============  =========  ======================
    """
    root = tmp_path / "src"
    _file(root / "top.txt", 10)
    for i in (1, 2, 3):
        _file(root / "a" / "p" / str(i), 100)
    _file(root / "a" / "big", 2 * MiB)
    _file(root / "b" / "edge", 1024)
    _file(root / "b" / "x", 70 * KiB)
    _file(root / "c" / "d" / "e" / "h", 20 * MiB, sparse=True)
    _file(root / "c" / "d" / "g", 2 * GiB, sparse=True)
    _file(root / "c" / "d" / "tiny", 1023)
    (root / "empty").mkdir()
    return root


# hand totals of the tree
FILES = 10
BYTES = 10 + 300 + 2 * MiB + 1024 + 70 * KiB + 20 * MiB + 2 * GiB + 1023  # 2,170,626,357


def _scan(capsys, *argv: str, expect: int = 0) -> tuple[str, str]:
    rc = cli(["scan", *argv, "--no-progress"])
    out, err = capsys.readouterr()
    assert rc == expect, err
    return out, err


def test_exact_counts_of_a_local_tree(tree: Path, tmp_path: Path, capsys) -> None:
    prof_path = tmp_path / "p.json"
    out, _ = _scan(capsys, str(tree), "--out", str(prof_path), "--small-file-size", "1MB")
    p = json.loads(prof_path.read_text())
    assert BYTES == 2_170_626_357
    assert (p["totals"]["files"], p["totals"]["bytes"]) == (FILES, BYTES)
    by = {b["label"]: (b["files"], b["bytes"]) for b in p["buckets"]}
    assert by == {
        "<1 KiB": (5, 10 + 300 + 1023),
        "1 KiB-64 KiB": (1, 1024),
        "64 KiB-1 MiB": (1, 70 * KiB),
        "1-16 MiB": (1, 2 * MiB),
        "16-128 MiB": (1, 20 * MiB),
        "128 MiB-1 GiB": (0, 0),
        "1-10 GiB": (1, 2 * GiB),
        ">=10 GiB": (0, 0),
    }
    shares = {b["label"]: b["files_share"] for b in p["buckets"]}
    assert shares["<1 KiB"] == 0.5  # 5 of 10 files
    assert p["buckets"][6]["bytes_share"] == pytest.approx(2 * GiB / BYTES)
    # prefixes: a 4 objects, c 3, b 2, the root's own file 1 (the empty folder has none)
    assert [(x["prefix"], x["files"]) for x in p["prefixes"]] == [
        ("a", 4),
        ("c", 3),
        ("b", 2),
        ("", 1),
    ]
    assert p["totals"]["max_prefix_files"] == 4
    # small (< 1 MiB): a/p 3 files (300 B), b 2 (1024 + 71,680), c/d 1 (1023), the root 1 (10)
    small = p["small_files"]
    assert (small["files"], small["bytes"]) == (7, 300 + 1024 + 70 * KiB + 1023 + 10)
    assert [(f["folder"], f["small_files"], f["files"]) for f in small["top_folders"]] == [
        ("a/p", 3, 3),
        ("b", 2, 2),
        ("c/d", 1, 2),
        ("", 1, 1),
    ]
    assert sorted(p["digests"][str(tree)]) == ["", "a", "a/p", "b", "c/d", "c/d/e"]
    assert "10 files, 2.0 GiB in 6 folders, 4 top-level prefixes" in out
    assert "a/p: 3 of 3 files" in out


def test_since_gives_the_change_rate(tree: Path, tmp_path: Path, capsys) -> None:
    first = tmp_path / "p1.json"
    _scan(capsys, str(tree), "--out", str(first))
    # one new file (500 B), one rewritten (a/p/1: 100 -> 4000 B), one touched only
    # (b/edge, same size, new mtime), one deleted (c/d/tiny, 1023 B)
    _file(tree / "b" / "new", 500)
    _file(tree / "a" / "p" / "1", 4000)
    st = os.stat(tree / "b" / "edge")
    os.utime(tree / "b" / "edge", ns=(st.st_atime_ns, st.st_mtime_ns - 10**9))
    (tree / "c" / "d" / "tiny").unlink()
    second = tmp_path / "p2.json"
    out, _ = _scan(capsys, str(tree), "--out", str(second), "--since", str(first))
    p1, p2 = json.loads(first.read_text()), json.loads(second.read_text())
    ch = p2["change"]
    assert (ch["new_files"], ch["new_bytes"]) == (1, 500)
    assert (ch["changed_files"], ch["changed_bytes"]) == (2, 4000 + 1024)
    assert (ch["deleted_files"], ch["deleted_bytes"]) == (1, 1023)
    assert ch["approximate_folders"] == 0
    assert ch["median_changed_size"] == 1024  # median of 500, 1024, 4000
    assert ch["seconds"] == pytest.approx(p2["scanned_at_epoch"] - p1["scanned_at_epoch"])
    assert ch["events_per_s"] == pytest.approx(3 / ch["seconds"])
    assert ch["bytes_per_s"] == pytest.approx(5524 / ch["seconds"])
    assert ch["deletes_per_s"] == pytest.approx(1 / ch["seconds"])
    assert "1 new, 2 changed, 1 deleted" in out
    # the same tree again: nothing changed
    third = tmp_path / "p3.json"
    _scan(capsys, str(tree), "--out", str(third), "--since", str(second))
    ch3 = json.loads(third.read_text())["change"]
    assert (ch3["new_files"], ch3["changed_files"], ch3["deleted_files"]) == (0, 0, 0)
    # a profile is not its own predecessor
    _scan(capsys, str(tree), "--since", str(third), expect=0)
    _, err = _scan(capsys, str(tree), "--since", str(tmp_path / "none.json"), expect=2)
    assert err.strip() == f"lakeshift scan: error: --since: no such file: {tmp_path / 'none.json'}"


def test_resume_lists_only_the_folders_left(tmp_path: Path, capsys) -> None:
    root = tmp_path / "src"
    for name in "abcde":
        _file(root / name / "f", 10)
    state = tmp_path / "state"
    argv = [str(root), "--state", str(state), "--threads", "1"]
    _, err = _scan(capsys, *argv, "--max-folders", "2", expect=1)
    assert "listed 2 top-level folders, 0 taken from" in err
    assert "3 folders left; re-run with the same --state to continue" in err
    assert len(list((state / "folders").glob("*.json"))) == 2
    # a file added to a finished folder (a) is not seen: the re-run does not list it again;
    # one added to a folder still to do (d) is
    _file(root / "a" / "later", 10)
    _file(root / "d" / "later", 10)
    out_path = tmp_path / "p.json"
    _, err = _scan(capsys, *argv, "--out", str(out_path))
    assert "listed 3 top-level folders, 2 taken from" in err
    p = json.loads(out_path.read_text())
    assert {x["prefix"]: x["files"] for x in p["prefixes"]} == {
        "a": 1,
        "b": 1,
        "c": 1,
        "d": 2,
        "e": 1,
    }
    # all done: a third run lists nothing
    _, err = _scan(capsys, *argv)
    assert "listed 0 top-level folders, 5 taken from" in err
    # the state belongs to this scan: other options are refused
    _, err = _scan(capsys, *argv, "--small-file-size", "1KB", expect=2)
    assert "--state:" in err and "use another folder" in err


def test_preseeded_state_is_taken_as_is(tmp_path: Path, capsys) -> None:
    root = tmp_path / "src"
    for name in ("x", "y"):
        _file(root / name / "f", 10)
    full = tmp_path / "full"
    _scan(capsys, str(root), "--state", str(full))
    # seed a new state folder with only x's finished scan: the run lists y only
    seeded = tmp_path / "seeded"
    (seeded / "folders").mkdir(parents=True)
    (seeded / "scan.json").write_text((full / "scan.json").read_text())
    files = {json.loads(f.read_text())["name"]: f for f in (full / "folders").glob("*.json")}
    (seeded / "folders" / files["x"].name).write_text(files["x"].read_text())
    _, err = _scan(capsys, str(root), "--state", str(seeded))
    assert "listed 1 top-level folders, 1 taken from" in err


def test_html_report_is_self_contained(tree: Path, tmp_path: Path, capsys) -> None:
    report = tmp_path / "r.html"
    _scan(capsys, str(tree), "--html", str(report))
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>")
    pngs = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(pngs) == 2  # size distribution, top prefixes
    assert all(base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n" for b in pngs)
    assert not re.search(r'(src|href)="(?!data:)', page)  # nothing fetched from elsewhere
    assert "a/p" in page and "1-10 GiB" in page


def test_bad_input_one_line_exit_2(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nope"
    _, err = _scan(capsys, str(missing), expect=2)
    assert err.strip() == f"lakeshift scan: error: folder not found: {missing}"
    _, err = _scan(capsys, "foo://bucket/x", expect=2)
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("lakeshift scan: error: no filesystem for 'foo://bucket/x'")
    a_file = tmp_path / "f"
    a_file.write_text("x")
    _, err = _scan(capsys, str(a_file), expect=2)
    assert err.strip() == f"lakeshift scan: error: expected a folder, found a file: {a_file}"


def test_scan_feeds_plan_estimate(tree: Path, tmp_path: Path, capsys) -> None:
    prof = tmp_path / "p.json"
    _scan(capsys, str(tree), "--out", str(prof))
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        "name: est\ntables:\n  - {name: a, source: /s, target: /t, keys: [id], size: 60GB}\n"
    )
    assert cli(["plan", str(plan), "--estimate", "--scan", str(prof), "--json"]) == 0
    est = json.loads(capsys.readouterr().out)["estimate"]
    assert (est["bytes"], est["files"]) == (BYTES, FILES)
    # parts at 128 MiB: every file 1 part except the 2 GiB one (16): 9 + 16 = 25
    # requests: 10 files * 2 + 25 parts * 2 = 70; prefixes 10 objects / 4 in "a" = 2.5
    assert est["requests"] == 70
    assert est["prefixes"] == 2.5


def test_help_is_readable() -> None:
    proc = lakeshift("scan", "--help")
    text = proc.stdout
    for flag in ("--out", "--html", "--since", "--state", "--small-file-size", "--max-folders"):
        assert flag in text
    assert "SOURCE [SOURCE ...]" in text
    assert "lakeshift plan PLAN --estimate --scan" in " ".join(text.split())
    proc = lakeshift("plan", "--help")
    assert "--scan PROFILE.json" in proc.stdout


def test_a_failed_folder_keeps_the_others_and_is_listed_again(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    import lakeshift.ops.scan as scan_mod
    from lakeshift.errors import SourceError

    root = tmp_path / "src"
    for name in "abc":
        _file(root / name / "f", 10)
    real = scan_mod.fold_local
    seen: list[str] = []

    def flaky(top: str, name: str, *a, **kw):
        seen.append(name)
        if name == "b":
            raise SourceError(f"cannot list (connection reset): {top}/{name}")
        return real(top, name, *a, **kw)

    monkeypatch.setattr(scan_mod, "fold_local", flaky)  # --threads 1: folded in this process
    state = tmp_path / "state"
    argv = [str(root), "--state", str(state), "--threads", "1"]
    _, err = _scan(capsys, *argv, expect=1)
    assert err.strip().endswith(f"lakeshift scan: error: cannot list (connection reset): {root}/b")
    assert len(list((state / "folders").glob("*.json"))) == 2  # a and c are kept
    seen.clear()

    def spy(top: str, name: str, *a, **kw):
        seen.append(f"{top}/{name}")
        return real(top, name, *a, **kw)

    monkeypatch.setattr(scan_mod, "fold_local", spy)
    _, err = _scan(capsys, *argv)
    assert seen == [f"{root}/b"]  # only the failed folder is listed again
    assert "listed 1 top-level folders, 2 taken from" in err


def test_a_folder_removed_during_the_scan_is_empty(tmp_path: Path, capsys, monkeypatch) -> None:
    import lakeshift.ops.scan as scan_mod
    from lakeshift.sources.fs import FileEntry

    root = tmp_path / "src"
    _file(root / "a" / "f", 10)
    real = scan_mod.list_level
    monkeypatch.setattr(
        scan_mod, "list_level", lambda loc: [*real(loc), FileEntry("gone", 0, 0, True)]
    )
    out = tmp_path / "p.json"
    _scan(capsys, str(root), "--out", str(out))
    p = json.loads(out.read_text())
    assert [(x["prefix"], x["files"]) for x in p["prefixes"]] == [("a", 1)]


def test_two_sources_in_one_profile(tmp_path: Path, capsys) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    _file(one / "a" / "f", 10)
    _file(two / "a" / "f", 20)
    _file(two / "a" / "g", 30)
    out = tmp_path / "p.json"
    _scan(capsys, str(one), str(two), "--out", str(out))
    p = json.loads(out.read_text())
    assert p["sources"] == [str(one), str(two)]
    assert (p["totals"]["files"], p["totals"]["bytes"]) == (3, 60)
    assert [(x["prefix"], x["files"]) for x in p["prefixes"]] == [(f"{two}/a", 2), (f"{one}/a", 1)]


def test_entry_budget_keeps_digests_only_past_it(tmp_path: Path) -> None:
    from lakeshift.ops.scan import run_scan

    root = tmp_path / "src"
    _file(root / "a" / "1", 1)
    _file(root / "b" / "1", 1)
    _file(root / "b" / "2", 1)
    _file(root / "c" / "1", 1)
    res = run_scan([str(root)], threads=1, entries_total=2)
    assert res.profile is not None
    rows = res.profile["digests"][str(root)]
    # budget 2: a takes 1 (1 left), b needs 2 -> digests only, c takes the last one
    assert [rows[k][5] is not None for k in ("a", "b", "c")] == [True, False, True]
    assert rows["b"][:2] == [2, 2]  # counts and bytes stay


def _specials_tree(root: Path) -> None:
    """Regular files, links to a file and to a folder, a loop, a broken link and a FIFO."""
    _file(root / "t" / "a" / "1", 5)
    _file(root / "t" / "a" / "2", 2048)
    _file(root / "t" / "a" / "deep" / "3", 7)
    _file(root / "t" / "b" / "4", 11)
    _file(root / "outside" / "o", 13)
    os.symlink(root / "t" / "a" / "1", root / "t" / "b" / "to-file")  # counts as a 5 B file
    os.symlink(root / "outside", root / "t" / "b" / "to-dir")  # walked: o (13 B) below it
    os.symlink(root / "t", root / "t" / "a" / "deep" / "loop")  # a folder above it: left out
    os.symlink(root / "missing", root / "t" / "b" / "broken")  # left out
    os.mkfifo(root / "t" / "b" / "fifo")  # left out, never opened


def test_local_fold_equals_the_listing_fold(tmp_path: Path) -> None:
    """The per-folder walk of local trees folds to the same scan as the files-copy listing."""
    from lakeshift.ops.scan import fold_folder, fold_local
    from lakeshift.sources.fs import list_tree, resolve

    root = tmp_path / "src"
    _specials_tree(root)
    fast = fold_local(str(root), "t", 1024)
    # by hand: a/1, a/2, a/deep/3, b/4, b/to-file (5 B), b/to-dir/o (13 B)
    assert (fast.files, fast.bytes) == (6, 5 + 2048 + 7 + 11 + 5 + 13)
    assert sorted(fast.folders) == ["t/a", "t/a/deep", "t/b", "t/b/to-dir"]
    assert fast.folders["t/b"].entries == {
        "4": (11, os.stat(root / "t" / "b" / "4").st_mtime_ns),
        "to-file": (5, os.stat(root / "t" / "a" / "1").st_mtime_ns),
    }
    listed = fold_folder(list_tree(resolve(str(root / "t"))), "t", 1024)
    assert fast.to_json() == listed.to_json()


def test_folder_digest_is_the_documented_sum(tmp_path: Path) -> None:
    """Digest = sum mod 2**64 of the 64-bit BLAKE2b of each file's "name\\0size\\0mtime"."""
    import hashlib

    from lakeshift.ops.scan import fold_local

    folder = tmp_path / "src" / "t"
    names = ["p", "q", "é"]
    for i, name in enumerate(names):
        _file(folder / name, i)
        os.utime(folder / name, ns=(0, 10**18 + i))
    want = 0
    for i, name in enumerate(names):
        raw = f"{name}\0{i}\0{10**18 + i}".encode()
        want += int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big")
    got = fold_local(str(tmp_path / "src"), "t", 1024).folders["t"]
    assert f"{got.digest:016x}" == f"{want % 2**64:016x}"


def test_local_folders_in_processes_give_the_thread_profile(tmp_path: Path) -> None:
    """Two worker processes (--threads 2) and one thread give the same profile."""
    from lakeshift.ops.scan import run_scan

    root = tmp_path / "src"
    for top in range(6):
        for d in range(3):
            for f in range(4):
                _file(root / f"top{top}" / f"d{d}" / f"f{f}", top * 100 + d * 10 + f)
    _file(root / "rootfile", 1)
    one = run_scan([str(root)], threads=1).profile
    two = run_scan([str(root)], threads=2).profile
    assert one is not None and two is not None
    assert one["totals"]["files"] == 6 * 3 * 4 + 1
    for p in (one, two):
        p.pop("scanned_at", None), p.pop("finished_at", None), p.pop("seconds", None)
    assert one["digests"] == two["digests"]
    assert one["totals"] == two["totals"]
