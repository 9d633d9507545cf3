"""Mirror mode: a pull-through cache of an upstream registry (local packs shadow upstream names)."""
