"""Accounts: passwords, one-time codes, recovery codes, and the sign-in rules that use them."""
