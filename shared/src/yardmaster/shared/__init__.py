"""Yardmaster's common library: what two processes must agree on, written once."""
