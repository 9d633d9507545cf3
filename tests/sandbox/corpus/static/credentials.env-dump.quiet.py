# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: reading one named variable and changing one.
import os

os.environ["TOKENIZERS_PARALLELISM"] = "false"
threads = os.environ.get("OMP_NUM_THREADS", "1")
