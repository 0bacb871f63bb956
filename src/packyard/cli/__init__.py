"""The ``packyard`` command line."""
