"""Page views of the backup app, one module per area (restore, settings, assurance)."""
