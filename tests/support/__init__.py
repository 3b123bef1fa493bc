"""Helpers that tests share: a fake payment gateway over real HTTP, and the like."""
