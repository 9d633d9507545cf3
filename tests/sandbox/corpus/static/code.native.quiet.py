# ruff: noqa
# Inert sample for the sandbox scanner; it is parsed, never run. Look-alike: numpy arrays and a struct, no foreign calls.
import struct

import numpy as np

HEADER = struct.pack("<I", 4)
ZEROS = np.zeros(4, dtype=np.float32)
