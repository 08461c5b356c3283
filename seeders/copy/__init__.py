"""Moving rows into a target: COPY, atomically, keys and indexes rebuilt."""
