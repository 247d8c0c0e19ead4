"""Sample module with deliberate lint and security findings (test fixture, never imported)."""

import os
import pickle
import subprocess
import sys


def run(command):
    # bandit B602 (HIGH): shell=True with a non-literal command
    return subprocess.call(command, shell=True)


def load(blob):
    # bandit B301 (MEDIUM): unpickling untrusted data
    return pickle.loads(blob)


def compare(value):
    if value == None:
        return undefined_name
    return value
