"""Administration: moderation (approve, ban, yank), and the audit log of every publisher and admin action."""
