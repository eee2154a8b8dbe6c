"""Stack programs: typed stack config and the per-provider composition of components."""
