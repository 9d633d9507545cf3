"""Accounts: users, publishers and their members, API tokens."""
