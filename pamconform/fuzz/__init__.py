"""Fuzzing client for auth servers: seeded structure-aware generation, an exact-pair
oracle, a shrinker, and replayable findings (see docs/fuzz.md)."""
