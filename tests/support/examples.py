"""How many examples a hypothesis property tries.

As many as its test asks, except under mutmut (which sets ``MUTANT_UNDER_TEST`` in every process
it runs tests in): there each property runs once per mutant of every function it touches, so a
property asks for at most ``MUTATION_EXAMPLES``, drawn with a fixed seed (the ``mutation`` profile
of tests/conftest.py) so that a mutant is killed or not the same way on every run. A mutant that
only a rarer example would catch then survives, and is killed by a known-answer test instead
(docs/mutation.md).
"""

import os

MUTATION_RUN = "MUTANT_UNDER_TEST" in os.environ
MUTATION_EXAMPLES = 20


def examples(wanted: int) -> int:
    """``wanted``, or at most ``MUTATION_EXAMPLES`` under mutmut."""
    return min(wanted, MUTATION_EXAMPLES) if MUTATION_RUN else wanted
