"""AWS implementation of the provider contract: one component resource per capability.

Every component's type token is ``syncbot:aws:<Capability>``; children are parented to it and
named from its name. :mod:`infra.aws.bootstrap` and :mod:`infra.aws.app` compose them into the
two stack kinds.
"""
