"""Container images for clusters, built offline (see build.py)."""
