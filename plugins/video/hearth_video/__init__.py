"""Video for Hearth: AnimateDiff motion modules, Wan 2.1 text-to-video and video files."""
