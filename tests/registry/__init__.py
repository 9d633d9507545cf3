"""Tests of the client-side registry library: manifests and archives."""
