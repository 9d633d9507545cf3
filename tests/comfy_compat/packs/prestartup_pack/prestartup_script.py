# Runs before any pack loads: registers this pack's style folder so every pack can list it at import time.
import os

import folder_paths

folder_paths.folder_names_and_paths["prestartup_styles"] = (
    [os.path.join(os.path.dirname(os.path.realpath(__file__)), "styles")], {".txt"})
