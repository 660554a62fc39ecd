"""minicnn keeps freed host memory for reuse (glibc's allocator thresholds), so a
training step does not pay page faults for arrays the previous step freed; the
environment can opt out. Each case runs in a fresh interpreter: the setting is the
process's."""
import json
import os
import subprocess
import sys

import pytest

from minicnn import hostmemory

pytestmark = pytest.mark.skipif(hostmemory._glibc() is None,
                                reason="the allocator setting applies to glibc only")

# Allocates, touches and frees a 20 MB array three times and counts the page faults
# of each: with glibc's defaults the first array is mapped and unmapped, which moves
# the mmap threshold to 20 MB, so the second comes from fresh heap pages (about 270
# faults here: NumPy asks for huge pages); kept memory serves the second and third
# without a fault.
SCRIPT = r"""
import json, resource, sys
import numpy as np
if sys.argv[1] == "import":
    import minicnn
    from minicnn import hostmemory
    applied = hostmemory._applied
else:
    applied = None
faults = []
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    a = np.ones(5_000_000, np.float32)
    del a
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"applied": applied, "faults": faults}))
"""


def run(mode, **env):
    environment = dict(os.environ, **env)
    out = subprocess.run([sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True,
                         env=environment, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_minicnn_keeps_freed_memory():
    result = run("import")
    assert result["applied"] is True
    assert max(result["faults"][1:]) < 10, result


def test_without_minicnn_the_same_arrays_fault_again():
    """The test above can fail: glibc's defaults refault the second array."""
    result = run("plain")
    assert result["faults"][1] > 100, result


@pytest.mark.parametrize("value", ["0", "false", "no"])
def test_the_environment_opts_out(value):
    result = run("import", MINICNN_KEEP_FREED_MEMORY=value)
    assert result["applied"] is None
    assert result["faults"][1] > 100, result


def test_keep_freed_memory_is_idempotent():
    assert hostmemory.keep_freed_memory() is hostmemory.keep_freed_memory()
