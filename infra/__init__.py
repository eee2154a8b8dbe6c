"""Pulumi component resources that provision syncbot on AWS or GCP.

Nothing in this package imports ``app``: infrastructure only packages the app.
"""
