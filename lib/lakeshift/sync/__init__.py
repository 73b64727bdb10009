"""Live sync after the bulk phase: change sources, latest-per-key reduction, idempotent apply."""
