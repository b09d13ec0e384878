"""The function's modules: decode, model, storage, errors and the HTTP pieces that main.py wires up.

Kept import-free so that importing a submodule loads only what it needs (numpy, Pillow and the
interpreter are imported on first use, see loader.py).
"""
