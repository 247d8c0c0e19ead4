"""The application layer (lodec.app), driven as the Python API drives it."""
