"""The engine: tokenization, admission, the token-budget batcher and the per-model facades.

It knows nothing of gRPC or protos; the api/ layer translates.
"""
