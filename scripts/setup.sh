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
  rm -rf .jars/*.jar
  mvn -q -B -f conf/jars/pom.xml dependency:copy-dependencies \
      -DoutputDirectory="$PWD/.jars" -DexcludeTransitive=true
  echo "$jar_hash" > "$STAMPS/jars"
fi
# --- S3A connector (pom profile s3): linked from the Maven repository, not copied -------------
if [ "${LAKESHIFT_S3_JARS:-1}" != "0" ]; then
  s3_hash=$(hash_of conf/jars/pom.xml)-s3
  if [ "$(cat "$STAMPS/jars-s3" 2>/dev/null)" != "$s3_hash" ] || [ -z "$(ls .jars/s3/*.jar 2>/dev/null)" ]; then
    echo "setup: resolving the S3A connector (pom profile s3; ~700 MB the first time) into .jars/s3/"
    rm -rf .jars/s3 && mkdir -p .jars/s3
    mvn -q -B -f conf/jars/pom.xml -P s3 dependency:build-classpath -DexcludeTransitive=true \
        -DincludeArtifactIds=hadoop-aws,bundle,analyticsaccelerator-s3,wildfly-openssl \
        -Dmdep.outputFile="$PWD/.jars/s3/classpath.txt"
    { tr ':' '\n' < .jars/s3/classpath.txt; echo; } | while read -r jar; do
      [ -n "$jar" ] && ln -sf "$jar" ".jars/s3/$(basename "$jar")"
    done
    echo "$s3_hash" > "$STAMPS/jars-s3"
  fi
fi
echo "setup: ready ($(ls .jars/*.jar | wc -l) jars, $("$VENV/bin/python" -c 'import pyspark; print("pyspark", pyspark.__version__)'))"
