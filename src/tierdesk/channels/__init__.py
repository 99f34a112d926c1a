"""Channels: email in and out, notifications, webhooks (issue #9). So far: the guarded
client for outbound HTTP (http.py)."""
