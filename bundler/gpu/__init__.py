"""PyTorch backends: which PyTorch index serves the torch family for a job, and why.

A backend is named as uv's ``--torch-backend`` names it: ``auto``, ``cpu`` or ``cuXYZ`` (CUDA
X.Y: ``cu118``, ``cu126``, ``cu130``). The chosen backend becomes one *explicit* index,
``https://download.pytorch.org/whl/<backend>/`` (``.../whl/nightly/<backend>/`` when pre-releases are
allowed), that serves the torch family and nothing else (``family_patterns``). So torch, torchvision,
torchaudio, triton, pytorch-triton and the CUDA libraries come only from it, while everything else
(numpy, jinja2, certifi, ...: the PyTorch indexes re-host stale copies) comes from the general
indexes, PyPI by default; and a higher ``pytorch-triton`` on a public index is never considered.

``auto`` looks at each target profile's NVIDIA driver (``Facts.nvidia_driver``, captured on the
target by ``capture_profile.py``; never this machine's):

- no driver in a captured profile, or no captured profile at all (a ``--python-platform`` target,
  whose driver is unknown): ``cpu``;
- macOS: ``cpu`` -- torch has no CUDA builds for macOS, and the cpu index serves the same plain
  macOS wheels as PyPI, so a macOS target can share a lock with CPU-only Linux/Windows targets;
- a driver: among the CUDA builds of the torch releases the job admits (its torch specifiers, and
  wheels for the target's Python: the ``torch-releases`` table) that the driver fully supports, the
  newest CUDA major version, then the newest torch release, then that release's newest CUDA build.
  "Fully supports" means the driver is at least the toolkit driver of that CUDA release in NVIDIA's
  table (535.104.05 runs CUDA 12.2: cu121, torch 2.5; 560.35.03: cu126, torch 2.14). When no build
  qualifies, the same rule over the builds the driver runs through CUDA minor version compatibility
  (second table) picks one, with a warning; else ``cpu``. A torch requirement with a local version
  (``torch==2.3.0+cu121``) names the build itself.

One backend serves a job. When targets disagree under ``auto``: different CUDA builds resolve to the
oldest one (every newer driver runs it, and the reason says so); CPU-only targets next to CUDA
targets are refused with a message to lock them separately (a CUDA build on the CPU target would
carry gigabytes of unused libraries, a CPU build would waste the GPUs).

A named CUDA backend is checked against every target's captured driver: below the minor version
compatibility minimum it cannot run and is refused; below the toolkit driver it runs only through
minor version compatibility (no PTX JIT for newer PTX) and a warning says so.

The tables are data, in ``bundler/gpu/tables.toml``, each citing its source:

- ``toolkit-drivers``: the NVIDIA driver needed per CUDA toolkit (CUDA Toolkit Release Notes,
  Table 3 "CUDA Toolkit and Corresponding Driver Versions", the GA row of each minor release, Linux
  x86_64/aarch64 and Windows x86_64, CUDA 8.0 to 13.2). Windows has no row for 13.x (the toolkit
  stopped bundling the Windows driver); the 13.x minor-compatibility minimum (>= 580) stands in for it.
- ``compat-drivers``: the minimum driver for CUDA minor version compatibility (same release notes,
  Table 2; the Windows values and the 11.x/12.x point releases as uv's ``uv-torch`` crate carries
  them from earlier editions of that table): 13.x >= 580 (both); 12.x >= 525.60.13 Linux, >= 528.33
  Windows; 11.x >= 450.80.02 Linux, >= 452.39 Windows. Before 11.0 there is no minor version
  compatibility.
- ``torch-releases``: the Python range with wheels and the CUDA builds of each torch release on
  download.pytorch.org (pytorch/pytorch RELEASE.md, the release compatibility matrix).

uv's ``auto`` uses only the second table, so a driver of the R535 branch gets uv's newest 12.x build;
wheelhouse prefers a build the driver supports without compatibility mode and names the newer one in
the reason, for the user to force with ``--torch-backend`` after reading the caveat.

The modules: ``cuda`` (the tables and the driver arithmetic), ``backend`` (``choose_backend`` and the
torch family's index), ``checks`` (post-plan checks and warnings) and ``hints`` (the torch parts of
failure messages). Backend *names* are validated by ``bundler.inputs.parse_backend``, which needs no
table, so reading a recipe or a lock never loads this package.
"""
