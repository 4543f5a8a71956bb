"""Pages of the backups app that sit in the settings (the connection test of a location)."""
