"""Pulumi entry point: everything lives in :mod:`stacks.program`."""

from stacks.program import main

main()
