"""Helpers the tests share; conftest.py holds fixtures only."""
