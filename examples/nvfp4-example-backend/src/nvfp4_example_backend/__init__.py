"""An example third-party nvfp4 backend (see docs/plugins.md)."""
