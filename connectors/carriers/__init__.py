"""Carrier tracking connectors: each turns a carrier API's format into ``db.tracking`` events."""
