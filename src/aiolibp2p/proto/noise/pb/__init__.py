"""Generated protobuf modules of the Noise handshake (``scripts/gen-protos``)."""
