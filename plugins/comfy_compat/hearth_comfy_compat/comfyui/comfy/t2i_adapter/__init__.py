"""ComfyUI's ``comfy.t2i_adapter``: the T2I-adapter networks."""
