#!/usr/bin/env bash
# Idempotent setup: Python venv with lakeshift and its dev tools, and the JVM jars resolved by
# Maven from conf/jars/pom.xml into .jars/. A second run with nothing changed takes seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
STAMPS=.setup-stamps
mkdir -p "$STAMPS"

hash_of() { cat "$@" | sha256sum | cut -c1-16; }

# --- Python ---------------------------------------------------------------------------------
py_hash=$(hash_of pyproject.toml)
if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating $VENV"
  "$PYTHON" -m venv "$VENV"
fi
if [ "$(cat "$STAMPS/python" 2>/dev/null)" != "$py_hash" ]; then
  echo "setup: installing lakeshift and dev dependencies into $VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -e ".[dev]"
  echo "$py_hash" > "$STAMPS/python"
fi

# --- JVM jars ----------------------------------------------------------------------------------
jar_hash=$(hash_of conf/jars/pom.xml)
if [ "$(cat "$STAMPS/jars" 2>/dev/null)" != "$jar_hash" ] || [ -z "$(ls .jars/*.jar 2>/dev/null)" ]; then
  command -v mvn >/dev/null || { echo "setup: Maven (mvn) is required to resolve jars" >&2; exit 2; }
  command -v java >/dev/null || { echo "setup: Java 17 is required" >&2; exit 2; }
  echo "setup: resolving jars with Maven into .jars/"
  rm -rf .jars
  mvn -q -B -f conf/jars/pom.xml dependency:copy-dependencies \
      -DoutputDirectory="$PWD/.jars" -DexcludeTransitive=true
  echo "$jar_hash" > "$STAMPS/jars"
fi
echo "setup: ready ($(ls .jars/*.jar | wc -l) jars, $("$VENV/bin/python" -c 'import pyspark; print("pyspark", pyspark.__version__)'))"
