"""Domain objects and rules: plain Python, no HTTP and no SQL."""
