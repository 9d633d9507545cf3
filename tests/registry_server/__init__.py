"""Tests of the registry server, run against real server processes on loopback."""
