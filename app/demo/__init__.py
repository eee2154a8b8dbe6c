"""``syncbot demo``: the real service against a simulated Slack, watched from the terminal."""
