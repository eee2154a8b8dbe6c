"""Slack adapter: events, OAuth, Web API client, mrkdwn."""
