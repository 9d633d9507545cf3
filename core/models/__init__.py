"""Model weights and memory: loading checkpoints, detecting their architecture, and keeping devices within budget."""
