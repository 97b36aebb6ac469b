"""The generic evidence ledger: blobs, signed statements, a Merkle log and checkpoints.

It knows nothing of factory stages; ``customer_model_factory.chain`` does.
"""
