"""Replays: real behaviour logs through the worker's own decision code on event time."""
