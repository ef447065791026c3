"""Loading the lake's tables, one module per source, without Dagster: raw files to bronze and
quarantine, bronze (or a landed snapshot) to silver. The assets in ``lakehouse/defs/<domain>/``
call these functions; tests and benchmarks call them directly."""
