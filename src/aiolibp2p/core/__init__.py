"""aiolibp2p.core."""
