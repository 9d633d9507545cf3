# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Imitates a Discord webhook used to send data out (the id is fake).
WEBHOOK = "https://discord.com/api/webhooks/000000000000/inert-sample-token"
BOT = "https://api.telegram.org/bot000000:inert/sendDocument"
