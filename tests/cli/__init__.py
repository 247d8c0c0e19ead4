"""Command-line contracts: exit codes 0/1/2, one-line errors, --json shapes, the start-up fast path.

The attacks themselves are judged by the core (tests/core, bytes in); these tests check that the
command line reports the same refusals the way users and scripts rely on.
"""
