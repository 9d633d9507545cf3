"""The parity harness behind bench/comfyui_parity.py: checkpoint maker, workflows, servers and report."""
