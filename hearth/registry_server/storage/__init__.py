"""Storage: content-addressed, immutable blobs (archives, wheels) on a local folder or S3-compatible storage."""
