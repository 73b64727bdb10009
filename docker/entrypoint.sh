#!/usr/bin/env bash
# Entrypoint for Spark on Kubernetes, after Spark's own kubernetes/dockerfiles/spark/entrypoint.sh:
# `driver` and `executor` are the commands the Kubernetes scheduler backend passes; anything else
# runs as given (e.g. `lakeshift copy …` or `spark-submit …`).
set -euo pipefail

case "${1:-}" in
  driver)
    shift
    exec "${SPARK_HOME}/bin/spark-submit" \
      --conf "spark.driver.bindAddress=${SPARK_DRIVER_BIND_ADDRESS}" \
      --conf "spark.executorEnv.SPARK_DRIVER_POD_IP=${SPARK_DRIVER_BIND_ADDRESS}" \
      --deploy-mode client "$@"
    ;;
  executor)
    shift
    exec "${JAVA_HOME}/bin/java" \
      -Xms"${SPARK_EXECUTOR_MEMORY}" -Xmx"${SPARK_EXECUTOR_MEMORY}" \
      ${SPARK_JAVA_OPT_0:-} ${SPARK_JAVA_OPT_1:-} ${SPARK_JAVA_OPT_2:-} \
      -cp "${SPARK_CLASSPATH:-}:${SPARK_HOME}/jars/*" \
      org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
      --driver-url "${SPARK_DRIVER_URL}" \
      --executor-id "${SPARK_EXECUTOR_ID}" \
      --cores "${SPARK_EXECUTOR_CORES}" \
      --app-id "${SPARK_APPLICATION_ID}" \
      --hostname "${SPARK_EXECUTOR_POD_IP}" \
      --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}" \
      --podName "${SPARK_EXECUTOR_POD_NAME:-}"
    ;;
  *)
    exec "$@"
    ;;
esac
