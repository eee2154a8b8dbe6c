"""Rules for resources of the ``aws`` provider."""
