"""The operator's view: what jobs did (Spark event logs) and what sources hold."""
