"""One screen per concern: health, pins and cluster."""
