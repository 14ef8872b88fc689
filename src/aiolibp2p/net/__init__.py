"""aiolibp2p.net."""
