"""GCP components that satisfy the provider contract (``infra/contract.py``)."""
