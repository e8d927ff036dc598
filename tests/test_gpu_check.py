"""tools/gpu_check.sh, the one script a GPU call runs: without what tools/gpu_prepare.sh puts in .gpu/
it stops at once with a one-line error, before it installs or trains anything (device time is short)."""

import shutil
import subprocess

from conftest import ROOT


def test_gpu_check_without_its_prepared_folder_stops_with_a_one_line_error(tmp_path):
    checkout = tmp_path / "checkout"  # a checkout without .gpu/, as on a machine it was not carried to
    (checkout / "tools").mkdir(parents=True)
    shutil.copy(ROOT / "tools" / "gpu_check.sh", checkout / "tools")
    env = {"PATH": "/usr/bin:/bin", "OUT": str(tmp_path / "out"), "GPU_CHECK_RUNS": str(tmp_path / "runs")}
    done = subprocess.run(
        ["bash", "tools/gpu_check.sh"], cwd=checkout, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr == "gpu_check: no .gpu/ here; run tools/gpu_prepare.sh first\n"
    assert list((tmp_path / "out").iterdir()) == []  # nothing measured, nothing half-written
