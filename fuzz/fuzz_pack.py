"""atheris harness for the ``pack`` target (see ``targets.py`` and README.md).

Run: python fuzz/fuzz_pack.py fuzz/corpus/pack fuzz/seeds/pack -max_total_time=600
"""

import atheris

with atheris.instrument_imports(include=["lodec"]):
    import targets

if __name__ == "__main__":
    from _common import main

    main(targets.pack)
