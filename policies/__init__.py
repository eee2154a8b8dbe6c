"""syncbot's CrossGuard policy pack: rules per provider and resource, assembled in ``__main__``."""
