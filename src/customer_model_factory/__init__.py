"""Customer Model Factory: stage builders, validation gates and a signed evidence ledger."""
