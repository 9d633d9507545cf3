"""The registry server: publishers, tokens, packs, versions, uploads, search, simple index and verification."""
