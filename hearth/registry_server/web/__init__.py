"""Server-rendered web pages (no JavaScript needed): search, pack, publisher and the moderation queue."""
