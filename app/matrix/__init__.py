"""Matrix adapter: the application service, ghosts, portals, HTML formatting."""
