"""Trained miniature SD1.x models: the procedural "shapes" data set, the CPU training script and the shipped weights."""
