"""Sample module whose only security findings are MEDIUM severity (test fixture)."""

import pickle


def load(blob):
    return pickle.loads(blob)
