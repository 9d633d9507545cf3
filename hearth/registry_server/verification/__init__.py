"""Verification: archive safety at upload, then a job that scans and imports each pending version."""
