"""aiolibp2p.core.pb."""
