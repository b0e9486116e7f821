#!/usr/bin/env bash
# The Debian packages the tests, the demo and the benchmarks use, installed when missing.
# One list, called by `make test`, `make demo`, `make bench` and `.ci/run`, so a fresh machine
# needs nothing else. As root it installs with apt-get; otherwise it names what is missing and
# leaves the decision to the caller (tests that need a missing component fail under CI=true).
set -euo pipefail

# package -> why
PACKAGES=(
  in-toto          # the reference in-toto 1.3.1: interop tests and benchmarks
  bubblewrap       # the sandbox for steps and inspections
  docker-registry  # CNCF distribution: the OCI registry of the registry tests and the demo
  slurmctld        # Slurm controller: the multi-machine pipeline tests
  slurmd           # Slurm node daemon
  slurm-client     # sbatch, squeue, sacct, scancel
  munge            # Slurm's authentication daemon
  iproute2         # network namespaces for the Slurm lab's nodes
  python3-sklearn  # the example pipeline's model and the model-scanner corpus
  python3-joblib
  python3-pandas
  python3-torch    # the model-scanner corpus (PyTorch formats)
  python3-onnx     # the model-scanner corpus (ONNX)
  curl             # the registry benchmark's peer
  apache2-utils    # htpasswd: the bcrypt entries of the registry's basic-auth test
  git              # the in-toto demo's clone step, replayed by test/interop/demo.test.ts
)

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ $status == "install ok installed" ]] || missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

if [[ $(id -u) -ne 0 ]]; then
  echo "install-deps: missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
  exit 0
fi
echo "install-deps: installing ${missing[*]} (python3-torch alone takes about two minutes)"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
