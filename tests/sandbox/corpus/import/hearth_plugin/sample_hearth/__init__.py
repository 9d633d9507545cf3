"""Inert sample Hearth plugin for the sandbox tests."""
