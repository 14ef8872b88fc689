"""aiolibp2p.testing."""
