"""Shared machinery of the container scanners (zip directories, bounded decompression, member
extraction, limits), kept apart from the scanners so each scanner module stays one job."""
