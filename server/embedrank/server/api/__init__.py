"""The gRPC transport: servicers translate protos to engine calls and back. The only layer that imports grpc."""
