"""The App Home tab: where Slack admins set syncbot up (groups, publishing, mappings, backups)."""
