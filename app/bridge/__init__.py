"""The Slack <-> Matrix portal bridge: the part of mautrix-slack's job that needs both sides.

``app/slack`` and ``app/matrix`` never import each other; what needs both — a portal's channel
info and members from Slack, the whole-workspace sync after ``login app``, the Slack event hooks
that create and archive portals — lives here and depends on both adapters.
"""
