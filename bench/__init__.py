"""The performance benchmark (`python -m bench.run`, `make bench`)."""
