"""Packyard: a self-hosted image-metadata registry speaking the HCP Packer 2023-01-01 API."""

__version__ = "0.1.0"
