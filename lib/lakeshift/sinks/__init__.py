"""Every write lives here."""
