"""MongoDB → SQL: profiler, mapping, exact BSON type mapping, flatten/normalise, quarantine."""
