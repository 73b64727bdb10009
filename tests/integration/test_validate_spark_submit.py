"""`jobs/validate.py` under the pyspark install's real spark-submit (local master).

The job takes the same arguments as `lakeshift validate`; its exit code is the verdict and its
JSON report names exactly the planted differences.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from lakeshift.spark import jars_dir

REPO = Path(__file__).resolve().parents[2]


def test_jobs_validate_under_spark_submit(spark, tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    rows = [(i, f"n{i}", i * 1.5) for i in range(1, 51)]
    schema = "id long, name string, amount double"
    spark.createDataFrame(rows, schema).write.parquet(str(src))
    changed = [(i, "other" if i == 7 else n, a) for i, n, a in rows if i != 9] + [(99, "x", 1.0)]
    spark.createDataFrame(changed, schema).write.format("delta").save(str(dst))

    submit = Path(sys.executable).parent / "spark-submit"
    jars = ",".join(str(j) for j in sorted(jars_dir().glob("*.jar")))
    report = tmp_path / "report.json"
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "LAKESHIFT_MASTER": ""}
    cmd = [str(submit), "--master", "local[1]", "--conf", "spark.ui.enabled=false"]
    cmd += ["--jars", jars] if jars else []
    cmd += [str(REPO / "jobs" / "validate.py"), f"parquet:{src}", f"delta:{dst}"]
    cmd += ["--keys", "id", "--json", str(report)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 1, proc.stderr[-2000:]

    doc = json.loads(report.read_text())
    table = doc["tables"][0] if "tables" in doc else doc
    assert table["counts"] == {
        "missing_in_target": 1,
        "extra_in_target": 1,
        "duplicate_key": 0,
        "value_mismatch": 1,
    }
    assert table["left_rows"] == 50
    assert table["right_rows"] == 50
    assert table["column_mismatches"] == {"name": 1}
