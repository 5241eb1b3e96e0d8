"""Official checksums of downloadable release files, shipped as package data (hashes only, no data)."""
