"""FilesArgs: the model renders command lines the real ``lakeshift files`` parser reads back."""

from __future__ import annotations

import pytest

from lakeshift.cli import build_parser
from lakeshift.files.checksum import ALGORITHMS
from lakeshift.files.command import FilesArgs, config_from_args


def _parse(argv: list[str]) -> FilesArgs:
    ns = build_parser().parse_args(argv)
    return FilesArgs.from_namespace(ns)  # type: ignore[return-value]


def test_many_options_round_trip_through_the_real_parser() -> None:
    args = FilesArgs(
        src="hdfs://nn:8020/logs/${ds}",
        dst="s3a://bucket/logs",
        state="/tmp/state",
        checksum="md5",
        verify_mode="stream",
        update=True,
        checksum_always=True,
        delete=True,
        symlinks="skip",
        preserve=True,
        include=["*.log", "-odd"],
        exclude=["tmp/*"],
        blacklist=["live/*"],
        bandwidth=12.5,
        max_requests_per_s=40.0,
        task_size=3 << 20,
        big_file=5 << 20,
        chunk_size=6 << 20,
        split_above=7 << 20,
        part_size=5 << 20,
        concat_size=9 << 20,
        task_files=17,
        concat=r"(\d+)/.*",
        threads=3,
        retries=5,
        executor="threads",
        workers=2,
        s3_endpoint="http://127.0.0.1:9000",
        s3_region="eu-west-1",
        json_path="/tmp/summary.json",
        no_progress=True,
        master="local[2]",
        spark_conf=["spark.a=1"],
        run_date="2026-01-02",
    )
    line = args.argv(with_command=True)
    assert line[:3] == ["files", "hdfs://nn:8020/logs/${ds}", "s3a://bucket/logs"]
    assert "--json=/tmp/summary.json" in line and "--include=-odd" in line
    assert _parse(line) == args


def test_defaults_render_to_the_bare_positionals_and_parse_back() -> None:
    args = FilesArgs(src="/a", dst="/b")
    assert args.argv() == ["/a", "/b"]
    assert _parse(["files", "/a", "/b"]) == args


def test_size_options_take_units_and_sizes_render_as_bytes() -> None:
    parsed = _parse(["files", "/a", "/b", "--task-size", "1MB", "--part-size=8MiB"])
    assert parsed.task_size == 1 << 20  # binary units, as Spark sizes
    assert parsed.part_size == 8 << 20
    assert f"--part-size={8 << 20}" in parsed.argv()


def test_positionals_starting_with_a_dash_are_kept_after_a_separator() -> None:
    args = FilesArgs(src="-odd", dst="/b", threads=2)
    assert _parse(["files", *args.argv()]) == args


def test_parsed_namespace_still_builds_the_run_config() -> None:
    ns = build_parser().parse_args(["files", "/a", "/b", "--no-progress", "--json", "/tmp/x"])
    cfg = config_from_args(ns)
    assert cfg.progress is False and cfg.json_path == "/tmp/x"
    assert cfg.task_bytes == 256 << 20


def test_checksum_choices_match_the_algorithms() -> None:
    field = FilesArgs.model_fields["checksum"]
    assert tuple(field.annotation.__args__) == ALGORITHMS  # type: ignore[union-attr]


def test_bad_size_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(["files", "/a", "/b", "--task-size", "lots"])
    assert exc.value.code == 2


@pytest.mark.parametrize(
    ("argv", "preserve", "attrs"),
    [
        (["files", "/a", "/b"], None, ()),
        (["files", "/a", "/b", "--preserve"], "times", ("times",)),  # bare: times, as before
        (["files", "/a", "/b", "--preserve", "--threads", "2"], "times", ("times",)),
        (["files", "/a", "/b", "--preserve=perms"], "perms", ("perms",)),
        (["files", "/a", "/b", "--preserve", "times,perms"], "perms,times", ("perms", "times")),
        (
            ["files", "/a", "/b", "--preserve=Group, owner,perms,times"],
            "perms,owner,group,times",
            ("perms", "owner", "group", "times"),
        ),
    ],
)
def test_preserve_takes_an_optional_attribute_list(
    argv: list[str], preserve: str | None, attrs: tuple[str, ...]
) -> None:
    ns = build_parser().parse_args(argv)
    args = FilesArgs.from_namespace(ns)
    assert args.preserve == preserve
    assert config_from_args(ns).preserve == attrs
    assert _parse(args.argv(with_command=True)) == args  # renders as --preserve=LIST


def test_preserve_true_of_older_callers_means_times() -> None:
    args = FilesArgs(src="/a", dst="/b", preserve=True)  # type: ignore[arg-type]
    assert args.preserve == "times"
    assert args.argv() == ["/a", "/b", "--preserve=times"]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["files", "/a", "/b", "--preserve=mode"], "found 'mode'"),
        (["files", "/a", "/b", "--preserve=perms,"], "found 'perms,'"),
        (["files", "--preserve", "/a", "/b"], "--preserve after SRC DST"),
    ],
)
def test_bad_preserve_is_one_usage_line(argv: list[str], words: str, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--preserve" in err[0] and words in err[0], err
    assert "perms,owner,group,times" in err[0]


def test_preserve_notes_name_what_the_stores_cannot_hold() -> None:
    from lakeshift.files.runner import preserve_notes

    assert preserve_notes(("perms", "owner", "group", "times"), "/a", "hdfs://nn/b") == []
    assert preserve_notes(("times",), "s3://b/k", "/x") == []  # S3 objects have an mtime
    assert preserve_notes(("perms", "times"), "/a", "s3a://b/k") == [
        "perms,times not preserved: s3a target holds no permissions or settable modification times"
    ]
    assert preserve_notes(("owner",), "s3://b/k", "/x") == [
        "owner not preserved: s3 source holds no owners"
    ]
