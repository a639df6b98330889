"""Pure computations of the report worker: DataFrames and ``now`` in, DataFrames out."""
