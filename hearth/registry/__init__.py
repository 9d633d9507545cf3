"""Client-side library for node packs: manifests, archives, index client, environments, resolution and locks."""
