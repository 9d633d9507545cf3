# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: links to a community Discord and Telegram channel.
COMMUNITY = "https://discord.gg/example"
CHANNEL = "https://t.me/example_channel"
