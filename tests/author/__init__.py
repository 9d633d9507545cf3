"""Tests of the author commands: login, node init / validate / pack / publish, and the registry config."""
