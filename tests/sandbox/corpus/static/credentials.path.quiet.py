# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: words that contain ssh, data and wallet but name no secret.
SSH_HELP = "ssh_host is the host name shown in the UI"
DATA_DIR = "user_data/presets"
TITLE = "Wallet-sized portrait crop"
