"""aiolibp2p.proto."""
