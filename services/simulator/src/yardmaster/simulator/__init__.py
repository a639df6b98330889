"""Yardmaster's simulator: writes the provider's timed files into the bucket directory."""
