# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Imitates code that refers to SSH keys, browser logins and a wallet.
import os

KEY = os.path.expanduser("~/.ssh/id_rsa")
CHROME = os.path.join("Google", "Chrome", "User Data", "Default", "Login Data")
WALLET = "wallet.dat"
