"""Rules for resources of the ``gcp`` provider."""
