"""The sync core: endpoints, normalized posts, relay, message map, outbox. No network libraries."""
