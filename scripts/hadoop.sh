#!/usr/bin/env bash
# Hadoop's own mini cluster (HDFS, optionally YARN) on loopback, from Maven jars.
#
#   scripts/hadoop.sh build                 # resolve jars + compile the launcher (once per machine)
#   scripts/hadoop.sh start DIR [--yarn]    # start; prints DIR/ready (fs URI, conf dir, RM address)
#   scripts/hadoop.sh stop DIR
#   scripts/hadoop.sh classpath             # the launcher's classpath (build first)
#
# The jars stay in the local Maven repository; the classpath file and the compiled launcher go
# to a per-machine cache ($LAKESHIFT_CACHE_DIR, default ~/.cache/lakeshift), keyed by the hash of
# scripts/hadoop/, so a fresh clone reuses them. DIR/conf is a client configuration
# (HADOOP_CONF_DIR) for spark-submit --master yarn and Hadoop clients.
set -euo pipefail
cd "$(dirname "$0")/.."
here=$PWD
cache_root=${LAKESHIFT_CACHE_DIR:-$HOME/.cache/lakeshift}
key=$(cat scripts/hadoop/pom.xml scripts/hadoop/MiniCluster.java | sha256sum | cut -c1-12)
cache="$cache_root/hadoop-$key"
PY=${PYTHON:-.venv/bin/python}

build() {
  if [ -f "$cache/MiniCluster.class" ] && [ -s "$cache/classpath.txt" ]; then return 0; fi
  command -v mvn >/dev/null || { echo "hadoop: Maven (mvn) is required" >&2; exit 2; }
  command -v javac >/dev/null || { echo "hadoop: a JDK (javac) is required" >&2; exit 2; }
  echo "hadoop: resolving the mini cluster jars with Maven and compiling the launcher" >&2
  mkdir -p "$cache"
  mvn -q -B -f scripts/hadoop/pom.xml dependency:build-classpath \
      -Dmdep.outputFile="$cache/classpath.txt.tmp" >&2
  javac -d "$cache" -cp "$(cat "$cache/classpath.txt.tmp")" scripts/hadoop/MiniCluster.java
  mv "$cache/classpath.txt.tmp" "$cache/classpath.txt"
}

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

java_home() {
  if [ -n "${JAVA_HOME:-}" ]; then echo "$JAVA_HOME"; return; fi
  dirname "$(dirname "$(readlink -f "$(command -v java)")")"
}

cmd=${1:-}
case "$cmd" in
  build) build ;;
  classpath) build; echo "$cache:$(cat "$cache/classpath.txt")" ;;
  start)
    dir=${2:?usage: $0 start DIR [--yarn]}; shift 2
    yarn=0; [ "${1:-}" = "--yarn" ] && yarn=1
    build
    mkdir -p "$dir/tmp"; dir=$(cd "$dir" && pwd); rm -f "$dir/ready"
    ports=("$(free_port)" "$(free_port)")
    if [ "$yarn" = 1 ]; then for _ in 1 2 3 4 5 6 7 8; do ports+=("$(free_port)"); done; fi
    export JAVA_HOME; JAVA_HOME=$(java_home)
    (cd "$dir" && exec setsid java -Xmx768m -XX:+UseSerialGC -Djava.io.tmpdir="$dir/tmp" \
        -Dhadoop.log.dir="$dir/logs" -cp "$cache:$(cat "$cache/classpath.txt")" \
        MiniCluster "$dir" "${ports[@]}" >"$dir/cluster.log" 2>&1 < /dev/null) &
    echo $! > "$dir/cluster.pid"
    for _ in $(seq 1 1800); do
      [ -f "$dir/ready" ] && { cat "$dir/ready"; exit 0; }
      kill -0 "$(cat "$dir/cluster.pid")" 2>/dev/null || { echo "hadoop: mini cluster exited" >&2; tail -30 "$dir/cluster.log" >&2; exit 1; }
      sleep 0.2
    done
    echo "hadoop: mini cluster not ready after 6 minutes" >&2; tail -30 "$dir/cluster.log" >&2; exit 1
    ;;
  stop)
    dir=${2:?usage: $0 stop DIR}
    if [ -f "$dir/cluster.pid" ]; then
      pid=$(cat "$dir/cluster.pid")
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      kill -KILL "$pid" 2>/dev/null || true
      rm -f "$dir/cluster.pid" "$dir/ready"
    fi
    ;;
  *) echo "usage: $0 build|start DIR [--yarn]|stop DIR|classpath" >&2; exit 2 ;;
esac
: "$here"
