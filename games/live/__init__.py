"""Live MultiRef play: configs, lobby and pairing, the game engine, timers, notifications.

The database is authoritative: every change happens in a transaction that locks the game row,
so web processes, Celery workers and timers can all act on a game without losing a turn.
"""
