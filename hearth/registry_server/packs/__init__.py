"""Packs: node packs, their versions, node classes and verification findings; the read APIs over them."""
