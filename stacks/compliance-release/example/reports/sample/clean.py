"""Sample module with no lint or security findings (test fixture)."""


def add(a, b):
    return a + b
