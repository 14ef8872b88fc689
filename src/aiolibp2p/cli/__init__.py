"""aiolibp2p.cli."""
