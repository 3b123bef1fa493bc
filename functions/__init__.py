"""Triggers: each function validates its input, calls one handler and shapes the output."""
