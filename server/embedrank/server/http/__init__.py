"""The HTTP transport (--http-port): a sibling of server/api/ (gRPC) over the same engine."""
