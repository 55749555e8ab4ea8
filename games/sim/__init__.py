"""Simulated play: scripted speakers (and test listeners) acting through the real game engine."""
