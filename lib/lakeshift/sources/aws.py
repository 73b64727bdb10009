"""The driver's AWS identity, handed to copy tasks that run on Spark executors.

Executors on other machines have neither the driver's environment nor its ``~/.aws`` profile,
so a task there would meet S3 with no credentials (or someone else's). The driver resolves its
identity once with boto3's own chain (environment, ``AWS_PROFILE`` / shared credentials file,
SSO or assumed-role caches…) and the task closure carries the resolved keys, the endpoint and
the region; each task installs them into its Python worker's environment before touching S3,
where pyarrow's and boto3's default chains read them.

The keys never reach a log line, a report or a JSON summary: the object's ``repr`` shows only
the endpoint and region, and the secret key and session token are registered with
:func:`lakeshift.log.register_secret` (redacted should a message ever carry one). Temporary
credentials are a snapshot: a run longer than their lifetime needs executors with an identity
of their own.

Example:
    >>> DriverAws("AKIAEXAMPLE", "s3cr3t-value", None, "http://127.0.0.1:9000", "us-east-1")
    DriverAws(endpoint='http://127.0.0.1:9000', region='us-east-1', keys=***)
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from lakeshift.log import register_secret

_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")


@dataclass(frozen=True, repr=False)
class DriverAws:
    """Resolved AWS credentials plus the S3 endpoint and region of the driver.

    Attributes:
        access_key: the access key id.
        secret_key: the secret access key.
        token: the session token of temporary credentials (``None`` for long-lived keys).
        endpoint: ``$AWS_ENDPOINT_URL_S3`` / ``$AWS_ENDPOINT_URL`` of the driver, if set.
        region: the driver's region (environment or profile), if any.
    """

    access_key: str
    secret_key: str
    token: str | None
    endpoint: str | None
    region: str | None

    def __repr__(self) -> str:
        return f"DriverAws(endpoint={self.endpoint!r}, region={self.region!r}, keys=***)"

    __str__ = __repr__

    @classmethod
    def capture(cls) -> DriverAws | None:
        """The driver's identity by boto3's default chain; ``None`` when it has none."""
        import boto3

        session = boto3.session.Session()
        creds = session.get_credentials()
        if creds is None:
            return None
        frozen = creds.get_frozen_credentials()
        register_secret(frozen.secret_key)  # the key id is an identifier, not a secret
        register_secret(frozen.token)
        endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        return cls(
            frozen.access_key, frozen.secret_key, frozen.token, endpoint, session.region_name
        )

    def env(self) -> dict[str, str]:
        """The environment variables this identity sets (``AWS_SESSION_TOKEN`` only if any)."""
        env = {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}
        if self.token:
            env["AWS_SESSION_TOKEN"] = self.token
        if self.endpoint:
            env["AWS_ENDPOINT_URL_S3"] = self.endpoint
        if self.region:
            env["AWS_REGION"] = self.region
        return env

    def install(self) -> bool:
        """Make this process use the identity (a task on an executor); True when it changed.

        Sets the variables of :meth:`env` (keys in the environment take precedence over any
        profile the executor has), drops a session token this identity does not have, and
        forgets cached S3 clients made with other credentials.
        """
        from lakeshift.sources import fs as source_fs

        want = self.env()
        stale = [k for k in _KEYS if k not in want and k in os.environ]
        if all(os.environ.get(k) == v for k, v in want.items()) and not stale:
            return False
        for k in stale:
            del os.environ[k]
        os.environ.update(want)
        source_fs.forget_s3_clients()
        return True
