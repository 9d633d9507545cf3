"""Publishing: version reservations, signed single-use upload URLs and accepting archives."""
