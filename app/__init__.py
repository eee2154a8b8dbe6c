"""syncbot: keep chat channels in sync across Slack workspaces, Matrix rooms and peers."""
