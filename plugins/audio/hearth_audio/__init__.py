"""Audio files for Hearth: ComfyUI's AUDIO type, loading through PyAV, FLAC/MP3/Opus saving and editing nodes."""
