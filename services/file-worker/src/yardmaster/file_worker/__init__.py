"""Yardmaster's file worker: discovers bucket files (claiming and loading: the ingestion issue)."""
