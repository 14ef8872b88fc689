"""aiolibp2p.proto.identify.pb: generated protobuf code (scripts/gen-protos)."""
