#!/usr/bin/env bash
# The test command (README, `make test`, .ci/run): static checks, then the whole pytest suite
# against a real local kube-apiserver + etcd (started by the test session, stopped afterwards).
# Extra arguments go to pytest, e.g. `hack/test.sh -k sandbox`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
hack/bootstrap.sh
hack/lint.sh
# Build what the suite needs before pytest starts, so a first run says what it builds and how
# far along it is (pytest would capture the output): the control-plane and node binaries,
# stripe-mock, promtool, Helm, and the project image (tests/cluster; needs root for dockerd).
hack/envtest.sh build
hack/stripe-mock.sh build
hack/promtool.sh >/dev/null
hack/cluster.sh build
hack/cluster.sh helm >/dev/null
if [[ $(id -u) -eq 0 ]]; then hack/cluster.sh image; fi
set +e
.venv/bin/pytest "$@"
rc=$?
set -e
# pytest exits 5 when it collected nothing: for this suite that is a failure, not a pass.
if [[ $rc -eq 5 ]]; then echo "test: no tests were collected" >&2; exit 1; fi
exit $rc
