"""Transports: how raw connections are made (TCP today)."""
