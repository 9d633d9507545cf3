"""Verification of untrusted node packs: archive safety, static scan and isolated import."""
