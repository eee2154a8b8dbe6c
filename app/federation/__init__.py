"""Peer-instance federation over signed HTTP."""
