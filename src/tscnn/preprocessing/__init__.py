"""From frames on disk to the three 48x48 input streams (cached)."""
