"""Integrations with coding agents: their transcripts and their settings."""
