#!/usr/bin/env bash
# Start/stop a local Spark standalone cluster (one master, one worker) from the pyspark install.
#
#   scripts/spark_cluster.sh start DIR [--cores N] [--memory 1g]   # prints the master URL
#   scripts/spark_cluster.sh stop DIR
#   scripts/spark_cluster.sh status DIR
#
# Everything lives in DIR (pids, logs, the worker's work dir). Ports are free ones picked at start,
# all on 127.0.0.1 (web UIs included). Used by the coordinator's multi-cluster e2e test.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}

cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop|status DIR [--cores N] [--memory M]" >&2; exit 2; }
shift 2
cores=1; memory=1g
while [ $# -gt 0 ]; do
  case "$1" in
    --cores) cores=$2; shift 2 ;;
    --memory) memory=$2; shift 2 ;;
    *) echo "spark_cluster: unknown option $1" >&2; exit 2 ;;
  esac
done

spark_home=$("$PY" -c 'import os, pyspark; print(os.path.dirname(pyspark.__file__))')
export SPARK_HOME="$spark_home" SPARK_LOCAL_IP=127.0.0.1 SPARK_MASTER_HOST=127.0.0.1
export SPARK_NO_DAEMONIZE=1 PYSPARK_PYTHON="$PWD/$PY"

free_port() { "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_for() {  # wait_for FILE PATTERN SECONDS
  for _ in $(seq 1 $(( $3 * 5 ))); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "spark_cluster: timed out waiting for '$2' in $1" >&2; tail -20 "$1" >&2; return 1
}

case "$cmd" in
  start)
    mkdir -p "$dir/work"
    dir=$(cd "$dir" && pwd)
    port=$(free_port); ui=$(free_port); wui=$(free_port)
    url="spark://127.0.0.1:$port"
    setsid "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.master.Master \
      --host 127.0.0.1 --port "$port" --webui-port "$ui" >"$dir/master.log" 2>&1 < /dev/null &
    echo $! > "$dir/master.pid"
    wait_for "$dir/master.log" "I have been elected leader" 90
    setsid "$SPARK_HOME/bin/spark-class" org.apache.spark.deploy.worker.Worker \
      --host 127.0.0.1 --cores "$cores" --memory "$memory" --work-dir "$dir/work" \
      --webui-port "$wui" "$url" >"$dir/worker.log" 2>&1 < /dev/null &
    echo $! > "$dir/worker.pid"
    wait_for "$dir/worker.log" "Successfully registered with master" 90
    echo "$url" > "$dir/master.url"
    echo "$url"
    ;;
  stop)
    for role in worker master; do
      if [ -f "$dir/$role.pid" ]; then
        pid=$(cat "$dir/$role.pid")
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL -- "-$pid" 2>/dev/null || true
        rm -f "$dir/$role.pid"
      fi
    done
    ;;
  status)
    for role in master worker; do
      if [ -f "$dir/$role.pid" ] && kill -0 "$(cat "$dir/$role.pid")" 2>/dev/null; then
        echo "$role: running (pid $(cat "$dir/$role.pid"))"
      else
        echo "$role: stopped"
      fi
    done
    ;;
  *) echo "usage: $0 start|stop|status DIR" >&2; exit 2 ;;
esac
