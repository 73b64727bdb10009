"""Cluster profiles (``conf/clusters.yaml``): where jobs run and how many at once.

Three backends:

* ``spark-submit`` — ``<venv>/bin/spark-submit`` from the pyspark install, for ``local[*]``,
  ``spark://`` standalone, ``yarn`` and ``k8s://`` masters (Kubernetes needs ``image``);
* ``emr`` — steps added to a running EMR cluster through boto3;
* ``livy`` — batches through Livy's REST API.

Each profile has a ``capacity`` (concurrent jobs), a ``weight`` (its share of the bytes when
balancing) and Spark options.

Example ``clusters.yaml``::

    clusters:
      local: {backend: spark-submit, master: "local[2]", capacity: 2}
      emr-a: {backend: emr, cluster_id: j-ABC, region: eu-west-1, code_uri: s3://b/lakeshift/}
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from lakeshift.config import StrictModel, load_model


class _Profile(StrictModel):
    capacity: int = Field(default=2, ge=1)
    weight: float = Field(default=1.0, gt=0)
    conf: dict[str, str] = Field(default_factory=dict)
    env: dict[str, str] = Field(default_factory=dict)


class SparkSubmitProfile(_Profile):
    """A cluster reached with ``spark-submit``.

    Attributes:
        master: ``local[*]``, ``spark://host:port``, ``yarn`` or ``k8s://https://host:port``.
        deploy_mode: ``client`` or ``cluster`` (default: ``cluster`` on YARN/Kubernetes).
        image: container image with lakeshift and its jars (Kubernetes only; required there).
        submit_args: further ``spark-submit`` arguments (``--driver-memory 1g`` …).
        jars: ship ``.jars/*.jar`` with ``--jars`` and put ``.jars/s3/`` (S3A) on the class
            path (default: for local and standalone masters; on YARN when the nodes share this
            machine's paths).
        spark_submit: the ``spark-submit`` executable (default: the pyspark install's).
        hadoop_conf_dir: ``HADOOP_CONF_DIR`` for ``yarn`` (default: the profile's ``env``, else
            the environment's).
        yarn_rm: the ResourceManager's web address, ``http://host:8088`` (default: from
            ``yarn-site.xml`` in ``hadoop_conf_dir``).
        event_log: write each job's Spark event log into the run's ``eventlogs/<token>/`` and
            read its metrics (time per stage, resources asked vs used) into the state store
            when the job ends; where the driver runs on this machine (local and standalone
            masters, client mode). Set ``spark.eventLog.*`` in ``conf`` for other clusters.
    """

    backend: Literal["spark-submit"] = "spark-submit"
    master: str = "local[*]"
    deploy_mode: Literal["client", "cluster"] | None = None
    image: str | None = None
    submit_args: list[str] = Field(default_factory=list)
    jars: bool | None = None
    spark_submit: str | None = None
    hadoop_conf_dir: str | None = None
    yarn_rm: str | None = None
    event_log: bool = True

    @model_validator(mode="after")
    def _image_for_k8s(self) -> SparkSubmitProfile:
        if self.master.startswith("k8s://") and not self.image:
            raise ValueError("a k8s:// master needs `image` (a lakeshift container image)")
        ok = ("local", "spark://", "yarn", "k8s://")
        if not self.master.startswith(ok):
            raise ValueError(
                f"master: expected local[*], spark://…, yarn or k8s://…, found {self.master!r}"
            )
        return self


class EmrProfile(_Profile):
    """Steps on a running EMR cluster.

    Attributes:
        cluster_id: the EMR cluster (``j-…``).
        region: AWS region.
        endpoint_url: API endpoint override (tests; S3-compatible stores).
        code_uri: ``s3://bucket/prefix/`` where the lakeshift zip and job files are uploaded.
        submit_args: further ``spark-submit`` arguments on the cluster.
    """

    backend: Literal["emr"]
    cluster_id: str
    region: str = "us-east-1"
    endpoint_url: str | None = None
    code_uri: str
    submit_args: list[str] = Field(default_factory=list)


class LivyProfile(_Profile):
    """Batches on an Apache Livy server.

    Attributes:
        url: the Livy server (``http://host:8998``).
        code_uri: where the server reads the zip and job files (a path it can reach; files are
            copied there when it is a local folder).
        timeout_s: HTTP timeout.
    """

    backend: Literal["livy"]
    url: str
    code_uri: str
    timeout_s: float = Field(default=30.0, gt=0)


ClusterProfile = Annotated[
    SparkSubmitProfile | EmrProfile | LivyProfile, Field(discriminator="backend")
]


class ClustersConfig(StrictModel):
    """The cluster profiles file."""

    clusters: dict[str, ClusterProfile] = Field(min_length=1)


def load_clusters(path: str | Path, run_date: dt.date | None = None) -> ClustersConfig:
    """Load ``clusters.yaml``.

    Raises:
        ConfigError: the file is invalid.
    """
    return load_model(Path(path), ClustersConfig, run_date=run_date)
