"""Tests of the example stacks under stacks/: each runs end to end, and their skills behave as documented."""
