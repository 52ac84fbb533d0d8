"""Hosting the model you trained: start a server on this machine, call it like a provider, export it."""
