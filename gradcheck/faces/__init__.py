"""Faces: the command line, the pytest plugin and ``gradcheck verify``.

Each turns a person's intent into a request and prints the harness's outcome.
"""
