"""The daemon: one active at a time; schedules task sync and the job engine's repairs."""
